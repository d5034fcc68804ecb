import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { runCustomization } from '../../functions/runner/run-customization.ts';
import { runOutcomeSchema, type RunDocument, type RunOutcome } from '../../functions/core/workflow/run-document.ts';
import { parseRunDocument } from '../../functions/runner/run-document.ts';
import { memoryRootsUnder } from '../../functions/runner/mounts.ts';
import { killOrphanedRun } from '../../functions/runner/workspace.ts';
import { ProcessMemoryBudget } from '../../functions/runner/workspace-memory.ts';
import { TempRepos } from '../helpers/git-repo.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const RUNNER = resolve('dist/runner.mjs');

// Two source images from the sample root, told apart by a marker file; lz4 so squashing is quick.
const IMAGE_A = '0b8c6a5e-3f43-4a8e-9e0f-2f7a8f0c0a01';
const IMAGE_B = '5d2f9c1e-7b6a-4c3d-8e9f-1a2b3c4d5e02';

let base: string;
let store: FsArtifactStore;
const repos = new TempRepos();
const images = new Map<string, { key: string; size: number; sha256: string; kernel: { key: string; size: number; sha256: string } }>();

/** Every pid whose command line contains `needle` (the host sees the sandbox's processes too). */
async function processesMatching(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.replace(/\0/g, ' ').includes(needle)) found.push(Number(entry));
  }
  return found;
}

const repoWith = (files: Record<string, string>) => repos.with(files);

/** A run document for both images: A in group Compute, B in group Application. */
function documentFor(session: string, layers: { name: string; url: string; commit: string; playbook?: string }[], overrides: Partial<RunDocument> = {}): RunDocument {
  const image = (id: string, name: string) => {
    const source = images.get(id)!;
    return {
      image_id: id,
      source_name: name,
      arch: 'x86_64' as const,
      rootfs: { key: source.key, size: source.size, sha256: source.sha256 },
      kernel: source.kernel,
      result_name: `${name}_cfs_${session}`,
      result_id: `result-${id.slice(0, 8)}-${session}`,
      upload_prefix: `boot-images/result-${id.slice(0, 8)}-${session}/`,
    };
  };
  return parseRunDocument({
    session,
    images: [image(IMAGE_A, 'compute'), image(IMAGE_B, 'application')],
    inventory: {
      all: {
        children: {
          cfs_image: {
            hosts: { [IMAGE_A]: {}, [IMAGE_B]: {} },
            vars: { ansible_connection: 'community.general.chroot', cray_cfs_image: true, ansible_python_interpreter: '/usr/bin/python3' },
          },
          Compute: { hosts: { [IMAGE_A]: {} } },
          Application: { hosts: { [IMAGE_B]: {} } },
        },
      },
    },
    layers: layers.map((l, index) => ({ index, name: l.name, clone_url: l.url, commit: l.commit, playbook: l.playbook ?? 'site.yml' })),
    ansible: { limit: `${IMAGE_A},${IMAGE_B}`, verbosity: 0, passthrough: [] },
    squashfs: { compressor: 'source' },
    allowed_schemes: ['file'],
    outcome_key: `sessions/${session}/runner-outcome.json`,
    logs_prefix: `sessions/${session}/logs/`,
    ...overrides,
  });
}

async function storedOutcome(session: string): Promise<RunOutcome> {
  return runOutcomeSchema.parse(JSON.parse(await readFile(store.pathOf(`sessions/${session}/runner-outcome.json`), 'utf8')));
}

/** A file inside an uploaded result squashfs, read without unpacking the whole image. */
async function fileInResult(resultKey: string, path: string): Promise<string | undefined> {
  const listing = (await run('unsquashfs', ['-l', store.pathOf(resultKey)])).stdout;
  if (!listing.split('\n').includes(`squashfs-root/${path}`)) return undefined;
  return (await run('unsquashfs', ['-cat', store.pathOf(resultKey), path])).stdout;
}

function workspace(name: string): string {
  return join(base, 'workspaces', name);
}

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'cfs-runner-e2e-'));
  store = new FsArtifactStore(join(base, 'store'));
  // `npm test` builds dist/ first; a lone run of this file builds it here, so it tests the current source.
  if (process.env.npm_lifecycle_event !== 'test') execFileSync(process.execPath, ['scripts/build.mjs']);
  const sample = join(base, 'sample');
  await buildSampleRoot(sample);
  for (const [id, marker] of [
    [IMAGE_A, 'compute'],
    [IMAGE_B, 'application'],
  ] as const) {
    const root = join(base, `root-${marker}`);
    await cp(sample, root, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    await writeFile(join(root, 'etc/image-marker'), `${marker}\n`);
    const squashfs = join(base, `${marker}.squashfs`);
    await run('mksquashfs', [root, squashfs, '-noappend', '-quiet', '-no-progress', '-comp', 'lz4']);
    const rootfs = await store.put(`boot-images/${id}/rootfs`, createReadStream(squashfs));
    const kernel = await store.put(`boot-images/${id}/kernel`, `source kernel of ${marker}\n`);
    images.set(id, { key: rootfs.key, size: rootfs.size, sha256: rootfs.sha256, kernel: { key: kernel.key, size: kernel.size, sha256: kernel.sha256 } });
    await rm(root, { recursive: true });
  }
  await rm(sample, { recursive: true });
});

afterAll(async () => {
  repos.disposeAll();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('the runner program (dist/runner.mjs)', () => {
  it('runs two layers in order on two images in two groups and uploads results holding each change', async () => {
    // Arrange
    const layer1 = repoWith({
      'site.yml': [
        '- hosts: cfs_image',
        '  gather_facts: false',
        '  tasks:',
        '    - copy: {dest: /etc/cfs-order, content: "layer1\\n"}',
        '    - copy: {dest: /etc/cfs-host, content: "{{ inventory_hostname }}\\n"}',
        '- hosts: Compute',
        '  gather_facts: false',
        '  tasks:',
        '    - file: {path: /etc/compute-only, state: touch}',
        '- hosts: Application',
        '  gather_facts: false',
        '  tasks:',
        '    - template: {src: app.j2, dest: /etc/application-only}',
        '',
      ].join('\n'),
      'app.j2': 'application {{ cray_cfs_image }}\n',
    });
    const layer2 = repoWith({
      'site.yml': [
        '- hosts: all',
        '  gather_facts: false',
        '  tasks:',
        '    - lineinfile: {path: /etc/cfs-order, line: layer2}',
        '    - stat: {path: /etc/cfs-order}',
        '      register: order',
        '    - command: cat /etc/image-marker',
        '      register: marker',
        '    - copy: {dest: /etc/cfs-modules, content: "{{ order.stat.exists }} {{ marker.stdout }}\\n"}',
        // What a package script's mktemp uses inside the root: never a workspace path (it does not exist there).
        "    - shell: 'echo \"$TMPDIR\" > /etc/cfs-tmpdir'",
        '',
      ].join('\n'),
    });
    const document = documentFor('twolayers', [
      { name: 'base', ...layer1 },
      { name: 'second', ...layer2 },
    ]);
    const documentKey = 'sessions/twolayers/run-document.json';
    await store.put(documentKey, JSON.stringify(document));
    const ws = workspace('twolayers');

    // Act
    const child = spawn(process.execPath, [RUNNER, '--document-key', documentKey, '--store-dir', store.root, '--workspace', ws], { stdio: 'ignore' });
    const exitCode = await new Promise<number | null>((resolve) => child.once('exit', resolve));

    // Assert
    const outcome = await storedOutcome('twolayers');
    expect(exitCode).toBe(0);
    expect(outcome.status).toBe('succeeded');
    expect(outcome.layers.map((l) => [l.name, l.state, l.exit_code])).toEqual([
      ['base', 'succeeded', 0],
      ['second', 'succeeded', 0],
    ]);
    const [resultA, resultB] = outcome.images;
    expect(resultA?.uploaded?.rootfs.key).toBe(`${document.images[0]!.upload_prefix}rootfs`);
    const rootfsA = resultA!.uploaded!.rootfs.key;
    const rootfsB = resultB!.uploaded!.rootfs.key;
    expect(await fileInResult(rootfsA, 'etc/cfs-order')).toBe('layer1\nlayer2\n');
    expect(await fileInResult(rootfsB, 'etc/cfs-order')).toBe('layer1\nlayer2\n');
    expect(await fileInResult(rootfsA, 'etc/cfs-host')).toBe(`${IMAGE_A}\n`);
    expect(await fileInResult(rootfsB, 'etc/cfs-host')).toBe(`${IMAGE_B}\n`);
    expect(await fileInResult(rootfsA, 'etc/compute-only')).toBe('');
    expect(await fileInResult(rootfsB, 'etc/compute-only')).toBeUndefined();
    expect(await fileInResult(rootfsB, 'etc/application-only')).toBe('application True\n');
    expect(await fileInResult(rootfsA, 'etc/application-only')).toBeUndefined();
    expect(await fileInResult(rootfsA, 'etc/image-marker')).toBe('compute\n');
    expect(await fileInResult(rootfsB, 'etc/cfs-modules')).toBe('True application\n');
    expect(await fileInResult(rootfsA, 'etc/cfs-tmpdir')).toBe('/tmp\n');
    // The result keeps the source's compressor, and what the outcome records is what was stored.
    expect((await run('unsquashfs', ['-s', store.pathOf(rootfsA)])).stdout).toMatch(/^Compression lz4$/m);
    expect(resultA?.compressor).toBe('lz4');
    const stored = await store.put('scratch/copy', createReadStream(store.pathOf(rootfsA)));
    expect({ size: stored.size, sha256: stored.sha256, md5: stored.md5 }).toEqual({
      size: resultA!.uploaded!.rootfs.size,
      sha256: resultA!.uploaded!.rootfs.sha256,
      md5: resultA!.uploaded!.rootfs.md5,
    });
    expect(await readFile(store.pathOf(outcome.layers[1]!.log_key), 'utf8')).toMatch(/PLAY RECAP/);
    expect(existsSync(ws)).toBe(false);
  });

  it('stops Ansible, unmounts, removes the workspace and records the termination on SIGTERM', async () => {
    // Arrange
    const marker = `${290 + Math.floor(Math.random() * 9)}.${Date.now() % 1000}`;
    const layer = repoWith({
      'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', `    - command: sleep ${marker}`, ''].join('\n'),
    });
    const document = documentFor('sigterm', [{ name: 'sleeper', ...layer }]);
    const documentKey = 'sessions/sigterm/run-document.json';
    await store.put(documentKey, JSON.stringify(document));
    const ws = workspace('sigterm');
    const child = spawn(process.execPath, [RUNNER, '--document-key', documentKey, '--store-dir', store.root, '--workspace', ws], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await waitFor(async () => ((await processesMatching(`sleep ${marker}`)).length > 0 ? true : undefined), 60_000, 'the playbook to start sleeping');

    // Act
    child.kill('SIGTERM');
    const exitCode = await exited;

    // Assert
    expect(exitCode).toBe(143);
    expect(await processesMatching(`sleep ${marker}`)).toEqual([]);
    expect(await processesMatching(ws)).toEqual([]);
    expect(await readFile('/proc/mounts', 'utf8')).not.toContain(ws);
    expect(existsSync(ws)).toBe(false);
    const outcome = await storedOutcome('sigterm');
    expect(outcome.status).toBe('failed');
    expect(outcome.reason).toBe("terminated by SIGTERM during layer 0 'sleeper'");
    expect(outcome.failed_layer).toBe('sleeper');
    expect(outcome.layers[0]?.state).toBe('failed');
    expect(outcome.images.every((i) => i.uploaded === undefined)).toBe(true);
  });

  it('stops at its time budget as on SIGTERM: Ansible stopped, the workspace removed, the budget named in the reason', async () => {
    // Arrange
    const marker = `${270 + Math.floor(Math.random() * 9)}.${Date.now() % 1000}`;
    const layer = repoWith({
      'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', `    - command: sleep ${marker}`, ''].join('\n'),
    });
    const document = documentFor('budget', [{ name: 'sleeper', ...layer }], { timeout_seconds: 10 });
    const documentKey = 'sessions/budget/run-document.json';
    await store.put(documentKey, JSON.stringify(document));
    const ws = workspace('budget');
    const started = performance.now();

    // Act
    const child = spawn(process.execPath, [RUNNER, '--document-key', documentKey, '--store-dir', store.root, '--workspace', ws], { stdio: 'ignore' });
    const exitCode = await new Promise<number | null>((resolve) => child.once('exit', resolve));

    // Assert
    expect(exitCode).toBe(143);
    expect(performance.now() - started).toBeLessThan(60_000);
    expect(await processesMatching(`sleep ${marker}`)).toEqual([]);
    expect(await readFile('/proc/mounts', 'utf8')).not.toContain(ws);
    expect(existsSync(ws)).toBe(false);
    const outcome = await storedOutcome('budget');
    expect(outcome.status).toBe('failed');
    expect(outcome.reason).toBe("timed out: the runner's time budget of 10s ran out during layer 0 'sleeper'");
    expect(outcome.failed_layer).toBe('sleeper');
    expect(outcome.images.every((i) => i.uploaded === undefined)).toBe(true);
  });

  it('leaves nothing running when the runner is killed outright (the sandbox dies with it), and killOrphanedRun removes its workspace', async () => {
    // Arrange
    const marker = `${280 + Math.floor(Math.random() * 9)}.${Date.now() % 1000}`;
    const layer = repoWith({
      'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', `    - command: sleep ${marker}`, ''].join('\n'),
    });
    const document = documentFor('orphan', [{ name: 'sleeper', ...layer }]);
    const documentKey = 'sessions/orphan/run-document.json';
    await store.put(documentKey, JSON.stringify(document));
    const ws = workspace('orphan');
    const child = spawn(process.execPath, [RUNNER, '--document-key', documentKey, '--store-dir', store.root, '--workspace', ws], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitFor(async () => ((await processesMatching(`sleep ${marker}`)).length > 0 ? true : undefined), 60_000, 'the playbook to start sleeping');
    child.kill('SIGKILL');
    await exited;
    // bwrap --die-with-parent: the playbook's processes end with the runner, before any sweep.
    await waitFor(async () => ((await processesMatching(`sleep ${marker}`)).length === 0 ? true : undefined), 10_000, 'the sandbox to end with its runner');

    // Act
    const swept = await killOrphanedRun(ws);

    // Assert
    expect(swept.removed).toBe(true);
    expect(await processesMatching(`sleep ${marker}`)).toEqual([]);
    expect(await processesMatching(ws)).toEqual([]);
    expect(existsSync(ws)).toBe(false);
  });
});

describe('runCustomization (in process)', () => {
  it('keeps the host read-only: a hosts: localhost play, delegate_to: localhost and a write through /proc/1/root change nothing outside the image', async () => {
    // Arrange
    const probe = `cfs-escape-${randomUUID()}`;
    const escape = (task: string, extra: string[] = []) => [`    - ${task}`, '      ignore_errors: true', '      ignore_unreachable: true', ...extra];
    const layer = repoWith({
      'site.yml': [
        '- hosts: localhost',
        '  gather_facts: false',
        '  tasks:',
        ...escape(`raw: echo escaped > /etc/${probe}-play-raw`),
        ...escape(`copy: {dest: /etc/${probe}-play-copy, content: "escaped\\n"}`),
        '- hosts: cfs_image',
        '  gather_facts: false',
        '  tasks:',
        ...escape(`raw: echo escaped > /etc/${probe}-delegated-raw`, ['      delegate_to: localhost']),
        ...escape(`copy: {dest: /etc/${probe}-delegated-copy, content: "escaped\\n"}`, ['      delegate_to: localhost']),
        ...escape(`raw: echo escaped > /proc/1/root/etc/${probe}-proc`),
        `    - copy: {dest: /etc/${probe}-inside, content: "inside\\n"}`,
        '',
      ].join('\n'),
    });
    // The default limit (the image ids) already keeps a localhost play from running; widen it so the sandbox is what stops it.
    const document = documentFor('escape', [{ name: 'escape', ...layer }], { ansible: { limit: `${IMAGE_A},${IMAGE_B},localhost`, verbosity: 0, passthrough: [] } });

    // Act
    const result = await runCustomization(document, { store, workspace: workspace('escape') });

    // Assert
    expect(result.exitCode).toBe(0);
    const escaped = (await readdir('/etc')).filter((name) => name.startsWith(probe));
    expect(escaped).toEqual([]);
    expect(await fileInResult(result.outcome.images[0]!.uploaded!.rootfs.key, `etc/${probe}-inside`)).toBe('inside\n');
    const log = await readFile(store.pathOf(result.outcome.layers[0]!.log_key), 'utf8');
    // The write through /proc/1/root reached the sandbox's own root (pid 1 is the sandbox's), not the host's.
    expect(log).toMatch(/TASK \[raw\][\s\S]*-> localhost/);
    expect(log).toMatch(/localhost\s+: ok=\d+/);
  });

  it('takes the kernel and initrd from the customized /boot, and the source kernel when the root has none', async () => {
    // Arrange
    const layer = repoWith({
      'site.yml': [
        '- hosts: Compute',
        '  gather_facts: false',
        '  tasks:',
        '    - copy: {dest: /boot/vmlinuz-2.0.0, content: "new kernel 2.0.0\\n"}',
        '    - file: {src: vmlinuz-2.0.0, dest: /boot/vmlinuz, state: link}',
        '    - copy: {dest: /boot/initrd.img-sample, content: "rebuilt initrd\\n"}',
        '- hosts: Application',
        '  gather_facts: false',
        '  tasks:',
        '    - file: {path: /boot/vmlinuz-sample, state: absent}',
        '',
      ].join('\n'),
    });
    const document = documentFor('boot', [{ name: 'kernel', ...layer }]);

    // Act
    const result = await runCustomization(document, { store, workspace: workspace('boot') });

    // Assert
    expect(result.exitCode).toBe(0);
    const [a, b] = result.outcome.images;
    expect(a?.uploaded?.kernel?.from).toBe('customized');
    expect(await readFile(store.pathOf(a!.uploaded!.kernel!.key), 'utf8')).toBe('new kernel 2.0.0\n');
    expect(a?.uploaded?.initrd?.from).toBe('customized');
    expect(await readFile(store.pathOf(a!.uploaded!.initrd!.key), 'utf8')).toBe('rebuilt initrd\n');
    expect(b?.uploaded?.kernel?.from).toBe('source');
    expect(await readFile(store.pathOf(b!.uploaded!.kernel!.key), 'utf8')).toBe('source kernel of application\n');
    expect(b?.uploaded?.initrd?.from).toBe('customized');
  });

  it('runs without the namespace when the container is the sandbox (ECS without CAP_SYS_ADMIN)', async () => {
    // Arrange
    const layer = repoWith({ 'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', '    - copy: {dest: /etc/container-mode, content: "{{ inventory_hostname }}\\n"}', ''].join('\n') });
    const document = documentFor('container', [{ name: 'plain', ...layer }]);

    // Act
    const result = await runCustomization(document, { store, workspace: workspace('container'), sandbox: 'container' });

    // Assert
    expect(result.exitCode).toBe(0);
    expect(await fileInResult(result.outcome.images[1]!.uploaded!.rootfs.key, 'etc/container-mode')).toBe(`${IMAGE_B}\n`);
    expect(existsSync(workspace('container'))).toBe(false);
  });

  it('runs every check in each customized root before packing: a check failing on the second image fails it at test with its last line, uploads nothing, and keeps each check\'s output', async () => {
    // Arrange
    const layer = repoWith({ 'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', '    - copy: {dest: /etc/motd, content: "customized\\n"}', ''].join('\n') });
    const validation = {
      checks: [
        { name: 'motd', command: 'test "$(cat /etc/motd)" = customized && echo motd ok' },
        { name: 'marker', command: 'echo "marker is $(cat /etc/image-marker)"; test "$(cat /etc/image-marker)" = compute' },
      ],
    };
    const document = documentFor('checks', [{ name: 'motd', ...layer }], { validation, progress_key: 'sessions/checks/runner-progress.json' });

    // Act
    const result = await runCustomization(document, { store, workspace: workspace('checks') });

    // Assert
    expect(result.exitCode).toBe(6);
    const outcome = await storedOutcome('checks');
    expect(outcome).toMatchObject({ status: 'failed', failed_step: 'test', failed_image: IMAGE_B });
    expect(outcome.reason).toMatch(/image 5d2f9c1e-\S+ failed its test: check 'marker' .* exited with 1: marker is application$/);
    expect(outcome.layers.map((l) => l.state)).toEqual(['succeeded']);
    const [a, b] = outcome.images;
    expect(a!.tests!.checks.map((c) => [c.name, c.state, c.exit_code])).toEqual([['motd', 'succeeded', 0], ['marker', 'succeeded', 0]]);
    expect(b!.tests!.checks.map((c) => [c.name, c.state, c.exit_code])).toEqual([['motd', 'succeeded', 0], ['marker', 'failed', 1]]);
    expect(await readFile(store.pathOf(b!.tests!.checks[1]!.log_key), 'utf8')).toContain('marker is application');
    expect(b!.tests!.checks[1]!.log_key).toBe(`sessions/checks/logs/tests/${IMAGE_B}/check-marker.log`);
    for (const image of document.images) expect(await store.list(image.upload_prefix)).toEqual([]);
    const progress = JSON.parse(await readFile(store.pathOf('sessions/checks/runner-progress.json'), 'utf8'));
    expect(progress.tests.map((t: { state: string }) => t.state)).toEqual(['succeeded', 'failed']);
    expect(existsSync(workspace('checks'))).toBe(false);
  });

  it('boots each packed result before storing it: a kernel QEMU cannot boot fails the first image at test, its console log kept, and nothing of either image is stored', async () => {
    // Arrange: the sample root's /boot holds placeholder text, not a kernel.
    const layer = repoWith({ 'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', '    - copy: {dest: /etc/motd, content: "customized\\n"}', ''].join('\n') });
    const validation = { checks: [], boot: { success_pattern: 'Reached target .*Multi-User System', kernel_parameters: 'root=/dev/vda console=ttyS0', timeout_seconds: 30, memory_mib: 256, network: false } };
    const document = documentFor('boots', [{ name: 'motd', ...layer }], { validation });

    // Act
    const result = await runCustomization(document, { store, workspace: workspace('boots') });

    // Assert
    expect(result.exitCode).toBe(6);
    const outcome = await storedOutcome('boots');
    expect(outcome).toMatchObject({ status: 'failed', failed_step: 'test', failed_image: IMAGE_A });
    expect(outcome.reason).toMatch(/image 0b8c6a5e-\S+ failed its boot test: the VM stopped before the console printed/);
    const boot = outcome.images[0]!.tests!.boot!;
    expect(boot).toMatchObject({ state: 'failed', accelerator: expect.stringMatching(/^(kvm|tcg)$/) });
    expect(await readFile(store.pathOf(boot.log_key), 'utf8')).toMatch(/^# CFS boot test/);
    expect(outcome.images[1]!.tests).toBeUndefined();
    for (const image of document.images) expect(await store.list(image.upload_prefix)).toEqual([]);
    expect(await processesMatching('cfs-boot-')).toEqual([]);
    expect(existsSync(workspace('boots'))).toBe(false);
  });

  it('stops at the first failing layer, names it and the failed image, and uploads nothing; away from its engine (ECS) it keeps no workspace for debug_on_failure', async () => {
    // Arrange
    const failing = repoWith({
      'site.yml': ['- hosts: Compute', '  gather_facts: false', '  tasks:', '    - command: /bin/false', ''].join('\n'),
    });
    const later = repoWith({ 'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', '    - file: {path: /etc/later, state: touch}', ''].join('\n') });
    const document = documentFor(
      'failing',
      [
        { name: 'breaks', ...failing },
        { name: 'never-runs', ...later },
      ],
      { debug_hold: true },
    );
    const lines: string[] = [];

    // Act: without `local`, as in an ECS task reading and writing S3.
    const result = await runCustomization(document, { store, workspace: workspace('failing'), log: (line) => void lines.push(line) });

    // Assert
    expect(result.exitCode).toBe(1);
    const outcome = await storedOutcome('failing');
    expect(outcome.status).toBe('failed');
    expect(outcome.failed_layer).toBe('breaks');
    expect(outcome.failed_image).toBe(IMAGE_A);
    expect(outcome.reason).toMatch(/layer 0 'breaks' failed/);
    expect(outcome.layers.map((l) => l.state)).toEqual(['failed', 'skipped']);
    expect(outcome.images.every((i) => i.staged && !i.customized && !i.uploaded)).toBe(true);
    expect(await store.list(document.images[0]!.upload_prefix)).toEqual([]);
    expect(existsSync(workspace('failing'))).toBe(false);
    expect(outcome.debug).toBeUndefined();
    expect(lines).toContain('debug_on_failure: the workspace cannot be kept: it ends with this task (the layer logs remain)');
  });

  it('refuses a rootfs whose sha256 does not match the run document', async () => {
    // Arrange
    const layer = repoWith({ 'site.yml': '- hosts: all\n  tasks: []\n' });
    const document = documentFor('checksum', [{ name: 'l', ...layer }]);
    document.images[1]!.rootfs.sha256 = '0'.repeat(64);

    // Act
    const result = await runCustomization(document, { store, workspace: workspace('checksum') });

    // Assert
    expect(result.exitCode).toBe(3);
    expect(result.outcome.reason).toMatch(new RegExp(`rootfs of image ${IMAGE_B} .* failed its checksum`));
    expect(result.outcome.images.map((i) => i.staged)).toEqual([true, false]);
    expect(existsSync(workspace('checksum'))).toBe(false);
  });

  it('with a local store, reads each rootfs in place and moves each result in: what the outcome records is what is stored, and the sources are untouched', async () => {
    // Arrange
    const layer = repoWith({ 'site.yml': ['- hosts: all', '  gather_facts: false', '  tasks:', '    - copy: {dest: /etc/in-place, content: "{{ inventory_hostname }}\\n"}', ''].join('\n') });
    const document = documentFor('inplace', [{ name: 'l', ...layer }]);
    const sources = document.images.map((i) => store.pathOf(i.rootfs.key));
    const before = await Promise.all(sources.map((file) => stat(file)));

    // Act
    const result = await runCustomization(document, { store, local: store, workspace: workspace('inplace') });

    // Assert
    expect(result.exitCode).toBe(0);
    for (const [i, image] of result.outcome.images.entries()) {
      const rootfs = image.uploaded!.rootfs;
      expect(await fileInResult(rootfs.key, 'etc/in-place')).toBe(`${image.image_id}\n`);
      const copy = await store.put(`scratch/inplace-${i}`, createReadStream(store.pathOf(rootfs.key)));
      expect({ size: copy.size, md5: copy.md5, sha256: copy.sha256 }).toEqual({ size: rootfs.size, md5: rootfs.md5, sha256: rootfs.sha256 });
      expect(await store.measured(rootfs.key)).toMatchObject({ size: rootfs.size, md5: rootfs.md5, sha256: rootfs.sha256 });
      expect((await readdir(store.pathOf(document.images[i]!.upload_prefix.replace(/\/$/, '')))).filter((f) => f.endsWith('.partial'))).toEqual([]);
    }
    const after = await Promise.all(sources.map((file) => stat(file)));
    expect(after.map((s) => [s.size, s.mtimeMs, s.ctimeMs])).toEqual(before.map((s) => [s.size, s.mtimeMs, s.ctimeMs]));
    expect(existsSync(workspace('inplace'))).toBe(false);
  });

  it('with a local store, refuses in place a rootfs whose bytes do not match the recorded sha256, copies nothing and leaves it unchanged', async () => {
    // Arrange
    const layer = repoWith({ 'site.yml': '- hosts: all\n  tasks: []\n' });
    const document = documentFor('inplace-checksum', [{ name: 'l', ...layer }]);
    document.images[0]!.rootfs.sha256 = 'f'.repeat(64);
    const source = store.pathOf(document.images[0]!.rootfs.key);
    const before = await stat(source);
    const logged: string[] = [];

    // Act
    const result = await runCustomization(document, { store, local: store, workspace: workspace('inplace-checksum'), log: (line) => logged.push(line) });

    // Assert
    expect(result.exitCode).toBe(3);
    expect(result.outcome.reason).toMatch(new RegExp(`rootfs of image ${IMAGE_A} \\(boot-images/${IMAGE_A}/rootfs\\) failed its checksum: sha256 ${images.get(IMAGE_A)!.sha256}`));
    expect(result.outcome.images.map((i) => i.staged)).toEqual([false, false]);
    expect(logged.some((line) => /unpacked|downloaded/.test(line))).toBe(false);
    const after = await stat(source);
    expect([after.size, after.mtimeMs, after.ctimeMs]).toEqual([before.size, before.mtimeMs, before.ctimeMs]);
    expect(existsSync(workspace('inplace-checksum'))).toBe(false);
  });

  it('refuses a truncated rootfs, and one whose bytes match the document but are not a whole squashfs', async () => {
    // Arrange
    const layer = repoWith({ 'site.yml': '- hosts: all\n  tasks: []\n' });
    const source = images.get(IMAGE_A)!;
    await mkdir(join(base, 'broken'), { recursive: true });
    const cut = join(base, 'broken', 'cut.squashfs');
    await cp(store.pathOf(source.key), cut);
    await truncate(cut, Math.floor(source.size / 2));
    const truncated = await store.put('boot-images/truncated/rootfs', createReadStream(cut));
    const lying = documentFor('truncated', [{ name: 'l', ...layer }]);
    lying.images[0]!.rootfs.key = truncated.key;
    const consistent = documentFor('corrupt', [{ name: 'l', ...layer }]);
    consistent.images[0]!.rootfs = { key: truncated.key, size: truncated.size, sha256: truncated.sha256 };

    // Act
    const first = await runCustomization(lying, { store, workspace: workspace('truncated') });
    const second = await runCustomization(consistent, { store, workspace: workspace('corrupt') });

    // Assert
    expect(first.exitCode).toBe(3);
    expect(first.outcome.reason).toMatch(/is \d+ bytes, the run document says \d+ \(truncated\)/);
    expect(second.exitCode).toBe(3);
    expect(second.outcome.reason).toMatch(new RegExp(`rootfs of image ${IMAGE_A} is not a readable squashfs`));
    expect(second.outcome.failed_image).toBe(IMAGE_A);
  });

  it('refuses to unpack when the unpacked root would not fit on the workspace disk', async () => {
    // Arrange
    const layer = repoWith({ 'site.yml': '- hosts: all\n  tasks: []\n' });
    const document = documentFor('nospace', [{ name: 'l', ...layer }]);
    const small = join(base, 'small-disk');
    await mkdir(small, { recursive: true });
    const sizeMiB = Math.ceil(images.get(IMAGE_A)!.size / (1 << 20)) + 4;
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', small]);

    // Act
    let result;
    try {
      result = await runCustomization(document, { store, workspace: join(small, 'ws') });
    } finally {
      execFileSync('umount', [small]);
    }

    // Assert
    expect(result.exitCode).toBe(3);
    expect(result.outcome.reason).toMatch(/not enough disk space in .* to unpack the rootfs of image .*: about [\d.]+ MiB needed, [\d.]+ MiB free/);
  });
});

describe('a workspace in memory', () => {
  const sleeper = () =>
    repoWith({
      'site.yml': [
        '- hosts: all',
        '  gather_facts: false',
        '  tasks:',
        '    - copy: {dest: /etc/in-memory, content: "written in RAM\\n"}',
        '    - command: python3 -c "import time; time.sleep(3)"',
        '',
      ].join('\n'),
    });

  it('unpacks each root into a tmpfs the budget grants, packs the result from it, and unmounts it with the workspace', async () => {
    // Arrange
    const document = documentFor('in-memory', [{ name: 'writes', ...sleeper() }]);
    const lines: string[] = [];
    const seen = new Set<string>();

    // Act: look at the mounts while the layer sleeps.
    const running = runCustomization(document, { store, local: store, workspace: workspace('in-memory'), memory: new ProcessMemoryBudget(8 * 2 ** 30), log: (line) => void lines.push(line) });
    await waitFor(async () => {
      for (const point of await memoryRootsUnder(workspace('in-memory'))) seen.add(point);
      return seen.size === 2 ? true : undefined;
    }, 60_000, 'both roots mounted as tmpfs');
    const result = await running;

    // Assert
    expect(result.outcome.reason).toBeUndefined();
    expect(result.exitCode).toBe(0);
    expect([...seen].sort()).toEqual([IMAGE_A, IMAGE_B].map((id) => join(workspace('in-memory'), 'images', id)).sort());
    expect(lines.filter((l) => /: unpacking into memory \(a tmpfs of [\d.]+ MiB for about [\d.]+ MiB unpacked\)$/.test(l))).toHaveLength(2);
    const outcome = await storedOutcome('in-memory');
    for (const image of outcome.images) expect(await fileInResult(image.uploaded!.rootfs.key, 'etc/in-memory')).toBe('written in RAM\n');
    expect(await memoryRootsUnder(base)).toEqual([]);
    expect(existsSync(workspace('in-memory'))).toBe(false);
  });

  it('unpacks on disk, saying so, when the root does not fit what the budget has left', async () => {
    // Arrange
    const document = documentFor('on-disk', [{ name: 'writes', ...repoWith({ 'site.yml': '- hosts: all\n  gather_facts: false\n  tasks: []\n' }) }]);
    const lines: string[] = [];

    // Act
    const result = await runCustomization(document, { store, local: store, workspace: workspace('on-disk'), memory: new ProcessMemoryBudget(64 * 2 ** 20), log: (line) => void lines.push(line) });

    // Assert
    expect(result.exitCode).toBe(0);
    expect(lines.filter((l) => /: unpacking on disk: [\d.]+ MiB does not fit the workspace memory budget now$/.test(l))).toHaveLength(2);
    expect(lines.some((l) => l.includes('unpacking into memory'))).toBe(false);
  });

  it('keeps the roots in their tmpfs through a debug hold, and the workspace removal unmounts them', async () => {
    // Arrange
    const failing = repoWith({ 'site.yml': ['- hosts: Compute', '  gather_facts: false', '  tasks:', '    - command: /bin/false', ''].join('\n') });
    const document = documentFor('held-in-memory', [{ name: 'breaks', ...failing }], { debug_hold: true });

    // Act
    const result = await runCustomization(document, { store, local: store, workspace: workspace('held-in-memory'), memory: new ProcessMemoryBudget(8 * 2 ** 30) });
    const heldRoots = await memoryRootsUnder(workspace('held-in-memory'));
    const marker = await readFile(join(workspace('held-in-memory'), 'images', IMAGE_A, 'etc/image-marker'), 'utf8');
    await killOrphanedRun(workspace('held-in-memory'));

    // Assert
    expect(result.exitCode).toBe(1);
    expect((await storedOutcome('held-in-memory')).debug).toBeDefined();
    expect(heldRoots).toHaveLength(2);
    expect(marker).toBe('compute\n');
    expect(await memoryRootsUnder(workspace('held-in-memory'))).toEqual([]);
    expect(existsSync(workspace('held-in-memory'))).toBe(false);
  });
});
