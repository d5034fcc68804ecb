import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { cliEnv } from '../helpers/api-token.ts';
import { debianRoot, type DebianRoot } from '../helpers/debian-root.ts';
import { TempRepos } from '../helpers/git-repo.ts';
import { callApi } from '../helpers/runtime-api.ts';

// A cold fixture build is mmdebstrap plus an initramfs rebuild (minutes, far more on a busy
// machine); the session installs from the mirror, rebuilds the initramfs and repacks 700 MB.
const FIXTURE_TIMEOUT_MS = 60 * 60_000;
const SESSION_TIMEOUT_MS = 40 * 60_000;

/** Added to the initramfs by the playbook: not in Debian's default (MODULES=most) initramfs, so its presence proves the rebuild. */
const ADDED_MODULE = 'overlay';

/**
 * Playbook tasks that write and enable a unit greeting on the console (as well as the journal)
 * once the image is up, with `command`: its line on the serial console is the boot test's marker.
 */
function greetAtBoot(command: string): string {
  return `    - name: Write a unit that greets at boot
      copy:
        dest: /etc/systemd/system/cfs-hello.service
        content: |
          [Unit]
          Description=Greet from the customized image
          [Service]
          Type=oneshot
          ExecStart=${command}
          StandardOutput=journal+console
          [Install]
          WantedBy=multi-user.target
    # Offline in the chroot: systemctl enable only writes the wants link; no daemon to reload.
    - name: Enable the unit
      systemd: { name: cfs-hello.service, enabled: true, daemon_reload: false }
`;
}

/** The layer: a package from Debian's mirror, a module added and the initramfs rebuilt, a unit enabled. */
const PLAYBOOK = `- hosts: cfs_image
  gather_facts: false
  tasks:
    - name: Install hello from the Debian mirror
      apt: { name: hello, update_cache: true }
    - name: Load ${ADDED_MODULE} from the initramfs
      lineinfile: { path: /etc/initramfs-tools/modules, line: ${ADDED_MODULE} }
      notify: Rebuild the initramfs
${greetAtBoot('/usr/bin/hello')}  handlers:
    - name: Rebuild the initramfs
      command: update-initramfs -u -k all
`;

/**
 * The proof asked of every result (issue 18): checks in the customized root, and a boot until the
 * enabled unit's greeting reaches the serial console, a line only a booted, customized image prints.
 */
const BOOT_MARKER = 'Hello, world!';
const VALIDATION = {
  checks: [
    { name: 'hello', command: '/usr/bin/hello' },
    { name: 'unit-enabled', command: 'test -L /etc/systemd/system/multi-user.target.wants/cfs-hello.service' },
  ],
  boot: { success_pattern: BOOT_MARKER, timeout_seconds: 600 },
};

/**
 * A layer that greets at boot as the site layer's unit does (with /bin/echo: the fixture has no
 * hello), so a result that boots prints the same marker, and that makes the Broken group's images
 * unbootable: the initramfs replaced by bytes the kernel cannot unpack, so nothing mounts the root.
 */
const BREAK_BOOT = `- hosts: all
  gather_facts: false
  tasks:
${greetAtBoot(`/bin/echo "${BOOT_MARKER}"`)}- hosts: Broken
  gather_facts: false
  tasks:
    - name: Replace the initramfs with junk
      shell: for f in /boot/initrd.img-*; do echo 'not an initramfs' > "$f"; done
`;

interface ImageView {
  id: string;
  name: string;
  link?: { path: string };
  metadata?: Record<string, string>;
}
interface Manifest {
  artifacts: { type: string; link: { path: string }; sha256: string }[];
}

const repos = new TempRepos();
let work: string;
let runtime: EmbeddedRuntime;
let env: Record<string, string>;
let fixture: DebianRoot;
let fixtureSha: { rootfs: string; initrd: string };
let source: ImageView;
let session: SessionRecord;
let result: ImageView;
/** The registered result's rootfs, downloaded and unpacked. */
let resultRoot: string;
let resultInitrd: string;

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(runtime, method, path, body);

/** Runs the CLI and fails loudly with its stderr when it fails. */
async function cfsOk(...argv: string[]): Promise<string> {
  const run = await cfsBin(env, ...argv);
  if (run.code !== 0) throw new Error(`cfs ${argv.slice(0, 2).join(' ')} exited ${run.code}: ${run.err}`);
  return run.out;
}

async function waitForSession(name: string, timeoutMs: number): Promise<SessionRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api<SessionRecord>('GET', `/apis/cfs/v3/sessions/${name}`);
    if (body.status.session.status === 'complete') return body;
    if (Date.now() > deadline) throw new Error(`session ${name} did not complete in ${timeoutMs} ms: ${JSON.stringify(body.status)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The stored bytes of one of an image's artifacts, read from the embedded store's directory. */
function storedArtifact(image: ImageView, type: 'rootfs.squashfs' | 'initrd'): string {
  const stored = (link: string) => join(runtime.dataDir, 'artifacts', ...link.replace(/^s3:\/\//, '').split('/'));
  const manifest = JSON.parse(readFileSync(stored(image.link!.path), 'utf8')) as Manifest;
  return stored(manifest.artifacts.find((a) => a.type.endsWith(type))!.link.path);
}

/** What the image's own lsinitramfs lists in `initrd`, run in the unpacked result root (the host needs no initramfs-tools). */
function lsinitramfs(initrd: string): string[] {
  copyFileSync(initrd, join(resultRoot, 'tmp/listed.img'));
  try {
    return execFileSync('chroot', [resultRoot, 'lsinitramfs', '/tmp/listed.img'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 }).split('\n');
  } finally {
    rmSync(join(resultRoot, 'tmp/listed.img'));
  }
}

const hasModule = (listing: string[], module: string) => listing.some((path) => new RegExp(`/${module}\\.ko(\\.[a-z]+)?$`).test(path));

beforeAll(async () => {
  ensureBuilt();
  let started = performance.now();
  fixture = await debianRoot();
  console.log(`[debian-image] fixture ready: ${seconds(started)}`);
  fixtureSha = { rootfs: sha256(fixture.rootfs), initrd: sha256(fixture.initrd) };
  work = mkdtempSync(join(tmpdir(), 'cfs-debian-e2e-'));
  runtime = await startEmbeddedRuntime({ dataDir: join(work, 'server'), port: 0 });
  env = cliEnv(runtime);

  started = performance.now();
  source = JSON.parse(
    await cfsOk('images', 'import', '--name', 'debian12', '--squashfs', fixture.rootfs, '--kernel', fixture.kernel, '--initrd', fixture.initrd, '--format', 'json'),
  ) as ImageView;
  console.log(`[debian-image] imported ${source.id}: ${seconds(started)}`);

  const layer = repos.with({ 'site.yml': PLAYBOOK });
  const configured = await api('PUT', '/apis/cfs/v3/configurations/debian-site', { layers: [{ name: 'site', clone_url: layer.url, commit: layer.commit, playbook: 'site.yml' }] });
  if (configured.status !== 200) throw new Error(`configuration refused: ${JSON.stringify(configured.body)}`);
  started = performance.now();
  const created = await api('POST', '/apis/cfs/v3/sessions', {
    name: 'debian-site',
    configuration_name: 'debian-site',
    target: { definition: 'image', groups: [{ name: 'Compute', members: [source.id] }], image_map: [{ source_id: source.id, result_name: 'debian12-site' }] },
    validation: VALIDATION,
  });
  if (created.status !== 201) throw new Error(`session refused: ${JSON.stringify(created.body)}`);
  session = await waitForSession('debian-site', SESSION_TIMEOUT_MS);
  const steps = (session.status.steps ?? []).map(
    (s) => `${s.name}${s.layer ? ` layer ${s.layer}` : ''} ${s.start_time && s.end_time ? ((Date.parse(s.end_time) - Date.parse(s.start_time)) / 1000).toFixed(1) : '?'} s`,
  );
  console.log(`[debian-image] session ${session.status.session.succeeded === 'true' ? 'succeeded' : 'failed'}: ${seconds(started)} (${steps.join(', ')})`);

  // Read the result back through the CLI's verified download, not the session's word.
  const resultId = session.status.artifacts[0]?.result_id;
  if (!resultId) throw new Error(`the session recorded no result: ${JSON.stringify(session.status.failure ?? session.status)}`);
  result = (await api<ImageView>('GET', `/apis/ims/v3/images/${resultId}`)).body;
  started = performance.now();
  const rootfs = join(work, 'result.squashfs');
  resultInitrd = join(work, 'result.initrd');
  await cfsOk('images', 'download', resultId, '-o', rootfs);
  await cfsOk('images', 'download', resultId, '--artifact', 'initrd', '-o', resultInitrd);
  resultRoot = join(work, 'result-root');
  execFileSync('unsquashfs', ['-q', '-n', '-d', resultRoot, rootfs], { stdio: 'ignore' });
  rmSync(rootfs);
  console.log(`[debian-image] result downloaded and unpacked: ${seconds(started)}`);
}, FIXTURE_TIMEOUT_MS + SESSION_TIMEOUT_MS);

afterAll(async () => {
  await runtime?.close();
  repos.disposeAll();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a real Debian 12 root customized by a session', () => {
  it('ends succeeded with the result image recorded as its artifact', () => {
    // Assert
    expect(session.status.failure).toBeUndefined();
    expect(session.status.session.succeeded).toBe('true');
    expect(session.status.artifacts).toEqual([{ image_id: source.id, result_id: result.id, type: 'ims_customized_image' }]);
    expect(result.name).toBe('debian12-site');
  });

  it('installs hello from the Debian mirror, and it runs in the result', () => {
    // Act
    const greeting = execFileSync('chroot', [resultRoot, '/usr/bin/hello'], { encoding: 'utf8' });
    const inSource = execFileSync('unsquashfs', ['-l', fixture.rootfs], { encoding: 'utf8', maxBuffer: 256 << 20 }).split('\n');
    // Assert
    expect(greeting).toBe('Hello, world!\n');
    expect(inSource).toContain('squashfs-root/usr/bin/python3');
    expect(inSource).not.toContain('squashfs-root/usr/bin/hello');
  });

  it("answers what the layer changed: hello installed (dpkg's versions, from the root's own database) and its files added", async () => {
    // Act
    const answer = await api<{ packages: { manager: string; changes: Array<{ name: string; old: string | null; new: string | null }> } | null; files: Array<{ path: string; change: string; type: string }> }>(
      'GET',
      `/apis/cfs/v3/sessions/debian-site/layers/0/changes?image_id=${source.id}`,
    );
    const installed = execFileSync('chroot', [resultRoot, 'dpkg-query', '-W', '-f', '${Version}', 'hello'], { encoding: 'utf8' });
    // Assert
    expect(answer.status).toBe(200);
    expect(answer.body.packages?.manager).toBe('dpkg');
    expect(answer.body.packages?.changes).toContainEqual({ name: 'hello', old: null, new: installed });
    expect(answer.body.files).toContainEqual({ path: '/usr/bin/hello', change: 'added', type: 'file' });
    expect(answer.body.files).toContainEqual({ path: '/var/lib/dpkg/status', change: 'modified', type: 'file' });
    expect(result.metadata?.cfs_layer_keys).toBe(session.status.layer_keys?.[source.id]?.join(','));
  });

  it('registers an initrd rebuilt in the chroot with the added module, beside the squashfs module the source had', () => {
    // Act
    const before = lsinitramfs(fixture.initrd);
    const after = lsinitramfs(resultInitrd);
    // Assert
    expect(sha256(resultInitrd)).not.toBe(fixtureSha.initrd);
    expect(hasModule(before, ADDED_MODULE)).toBe(false);
    expect(hasModule(after, ADDED_MODULE)).toBe(true);
    expect(hasModule(before, 'squashfs')).toBe(true);
    expect(hasModule(after, 'squashfs')).toBe(true);
  });

  it('enables the unit with its wants link', () => {
    // Act
    const link = readlinkSync(join(resultRoot, 'etc/systemd/system/multi-user.target.wants/cfs-hello.service'));
    // Assert
    expect(link).toBe('/etc/systemd/system/cfs-hello.service');
    expect(readFileSync(join(resultRoot, 'etc/systemd/system/cfs-hello.service'), 'utf8')).toContain('ExecStart=/usr/bin/hello');
  });

  it('proved the result before registering it: both checks passed in the root, and the boot reached the unit\'s greeting', () => {
    // Assert
    const tests = (session.status.steps ?? []).filter((s) => s.name === 'test');
    expect(tests.map((s) => [s.check ?? (s.boot ? 'boot' : 'image'), s.state])).toEqual([
      ['image', 'succeeded'],
      ['hello', 'succeeded'],
      ['unit-enabled', 'succeeded'],
      ['boot', 'succeeded'],
    ]);
    expect(tests.find((s) => s.boot)!.boot).toMatch(/^(kvm|tcg)$/);
    expect(tests.find((s) => s.boot)!.duration_ms).toBeGreaterThan(0);
  });

  it('leaves the source image byte for byte as imported', () => {
    // Assert
    expect(sha256(storedArtifact(source, 'rootfs.squashfs'))).toBe(fixtureSha.rootfs);
    expect(sha256(storedArtifact(source, 'initrd'))).toBe(fixtureSha.initrd);
    expect(sha256(fixture.rootfs)).toBe(fixtureSha.rootfs);
  });
});

describe('results that fail their boot test', () => {
  /** Starts a session of `groups` through the BREAK_BOOT layer with the same boot test as above (the fixture has no hello to check), and waits for its end, listing images every half second meanwhile. */
  async function brokenSession(name: string, groups: Array<{ name: string; members: string[] }>): Promise<{ session: SessionRecord; seen: Set<string> }> {
    const layer = repos.with({ 'site.yml': BREAK_BOOT });
    await api('PUT', `/apis/cfs/v3/configurations/${name}`, { layers: [{ name: 'break', clone_url: layer.url, commit: layer.commit, playbook: 'site.yml' }] });
    const created = await api('POST', '/apis/cfs/v3/sessions', { name, configuration_name: name, target: { definition: 'image', groups }, validation: { boot: VALIDATION.boot } });
    if (created.status !== 201) throw new Error(`session refused: ${JSON.stringify(created.body)}`);
    const seen = new Set<string>();
    let done = false;
    const watching = (async () => {
      while (!done) {
        for (const image of (await api<ImageView[]>('GET', '/apis/ims/v3/images')).body) seen.add(image.id);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    try {
      return { session: await waitForSession(name, SESSION_TIMEOUT_MS), seen };
    } finally {
      done = true;
      await watching;
    }
  }

  it('fails at test when the initramfs cannot mount the root, with the console\'s last lines, and registers nothing', async () => {
    // Arrange
    const before = (await api<ImageView[]>('GET', '/apis/ims/v3/images')).body.length;
    // Act
    const started = performance.now();
    const { session: broken } = await brokenSession('debian-broken', [{ name: 'Broken', members: [source.id] }]);
    console.log(`[debian-image] broken boot failed in ${seconds(started)}: ${broken.status.failure?.reason}`);
    // Assert
    expect(broken.status.session.succeeded).toBe('false');
    expect(broken.status.failure).toMatchObject({ step: 'test', image_id: source.id });
    // The kernel's own verdict leads the console's last lines, although its stack trace followed it.
    expect(broken.status.failure!.reason).toMatch(/failed its boot test: .*last console lines: (\[ *[\d.]+\] )?Kernel panic - not syncing/);
    expect(broken.status.artifacts).toEqual([]);
    expect((await api<ImageView[]>('GET', '/apis/ims/v3/images')).body.length).toBe(before);
  }, SESSION_TIMEOUT_MS);

  it('never lists the result of the first image when the second fails its boot test in the same session', async () => {
    // Arrange: a second image from the same root; the first is customized and boots, the second is broken.
    const second = JSON.parse(await cfsOk('images', 'import', '--name', 'debian12-second', '--squashfs', fixture.rootfs, '--kernel', fixture.kernel, '--initrd', fixture.initrd, '--format', 'json')) as ImageView;
    // Act
    const { session: mixed, seen } = await brokenSession('debian-mixed', [
      { name: 'Good', members: [source.id] },
      { name: 'Broken', members: [second.id] },
    ]);
    // Assert
    expect(mixed.status.failure).toMatchObject({ step: 'test', image_id: second.id });
    const tests = (mixed.status.steps ?? []).filter((s) => s.name === 'test' && s.boot);
    expect(tests.map((s) => [s.image_id, s.state])).toEqual([
      [source.id, 'succeeded'],
      [second.id, 'failed'],
    ]);
    const results = (mixed.status.plan ?? []).map((p) => p.result_id);
    expect(results).toHaveLength(2);
    for (const id of results) {
      expect(seen.has(id)).toBe(false);
      expect((await api('GET', `/apis/ims/v3/images/${id}`)).status).toBe(404);
    }
    expect(mixed.status.artifacts).toEqual([]);
  }, SESSION_TIMEOUT_MS);
});
