import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { findRunnerLocations } from '../../functions/core/workflow/run-document-store.ts';
import { startEmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfsBin } from '../cli/cli-harness.ts';
import { cliEnv, type ServerAddress } from '../helpers/api-token.ts';
import { embeddedRuntimeForFile } from '../helpers/e2e-runtime.ts';
import { callApi } from '../helpers/runtime-api.ts';
import { storedPath as storedPathIn } from '../helpers/stored-image.ts';

interface ImageView {
  id: string;
  name: string;
  link?: { path: string };
  metadata?: Record<string, string>;
}

const e2e = embeddedRuntimeForFile('cfs-e2e-');
const { repos, tempDir } = e2e;

const repoWith = (files: Record<string, string>) => repos.with(files);

const api = <T>(method: string, path: string, body?: unknown, server: ServerAddress = e2e.runtime) => callApi<T>(server, method, path, body);

async function buildSample(name: string, server: ServerAddress = e2e.runtime): Promise<ImageView> {
  const result = await cfsBin(cliEnv(server), 'images', 'build-sample', '--name', name, '--format', 'json');
  expect(result.err).not.toMatch(/^Error/m);
  expect(result.code).toBe(0);
  return JSON.parse(result.out) as ImageView;
}

async function waitForSession(name: string, until: (s: SessionRecord) => boolean, timeoutMs: number, server: ServerAddress = e2e.runtime): Promise<SessionRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api<SessionRecord>('GET', `/apis/cfs/v3/sessions/${name}`, undefined, server);
    if (until(body)) return body;
    if (Date.now() > deadline) throw new Error(`session ${name} did not get there in ${timeoutMs} ms: ${JSON.stringify(body.status)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const isComplete = (s: SessionRecord) => s.status.session.status === 'complete';

/** A file inside an image's rootfs, read straight from the stored squashfs with unsquashfs. */
function fileInImage(image: ImageView, path: string): string | undefined {
  const manifest = JSON.parse(readFileSync(storedPath(image.link!.path), 'utf8')) as { artifacts: { type: string; link: { path: string } }[] };
  const rootfs = manifest.artifacts.find((a) => a.type === 'application/vnd.cray.image.rootfs.squashfs')!;
  try {
    return execFileSync('unsquashfs', ['-cat', storedPath(rootfs.link.path), path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

/** The stored file of an `s3://` link in the runtime's data directory. */
const storedPath = (link: string) => storedPathIn(e2e.runtime.dataDir, link);

function rootfsSha256(image: ImageView): string {
  const manifest = JSON.parse(readFileSync(storedPath(image.link!.path), 'utf8')) as { artifacts: { type: string; link: { path: string } }[] };
  const rootfs = manifest.artifacts.find((a) => a.type.endsWith('rootfs.squashfs'))!;
  return createHash('sha256').update(readFileSync(storedPath(rootfs.link.path))).digest('hex');
}

async function putConfiguration(name: string, layers: { name: string; clone_url: string; commit: string; playbook: string }[]) {
  const response = await api('PUT', `/apis/cfs/v3/configurations/${name}`, { layers });
  expect(response.status).toBe(200);
}

describe('an image customization session through the API', () => {
  it('customizes two images in two groups, names results by the map and by default, and never touches the sources', async () => {
    // Arrange
    const compute = await buildSample('compute-base');
    const uan = await buildSample('uan-base');
    const before = { compute: rootfsSha256(compute), uan: rootfsSha256(uan) };
    const first = repoWith({
      'site.yml': [
        '- hosts: cfs_image',
        '  gather_facts: false',
        '  tasks:',
        '    - copy: { dest: /etc/layers.txt, content: "first\\n" }',
        '- hosts: Compute:&cfs_image',
        '  gather_facts: false',
        '  tasks:',
        '    - copy: { dest: /etc/role.txt, content: "compute {{ inventory_hostname }}\\n" }',
      ].join('\n'),
    });
    const second = repoWith({
      'second.yml': ['- hosts: cfs_image', '  gather_facts: false', '  tasks:', '    - lineinfile: { path: /etc/layers.txt, line: second }'].join('\n'),
    });
    await putConfiguration('two-layers', [
      { name: 'first', clone_url: first.url, commit: first.commit, playbook: 'site.yml' },
      { name: 'second', clone_url: second.url, commit: second.commit, playbook: 'second.yml' },
    ]);
    // Act
    const created = await api<SessionRecord>('POST', '/apis/cfs/v3/sessions', {
      name: 'two-images',
      configuration_name: 'two-layers',
      target: {
        definition: 'image',
        groups: [
          { name: 'Compute', members: [compute.id] },
          { name: 'UAN', members: [uan.id] },
        ],
        image_map: [{ source_id: compute.id, result_name: 'compute-customized' }],
      },
    });
    const done = await waitForSession('two-images', isComplete, 180_000);
    // Assert
    expect(created.status).toBe(201);
    expect(done.status.session.succeeded).toBe('true');
    expect(done.status.session.job).toMatch(/^local:two-images:/);
    expect(done.status.artifacts).toHaveLength(2);
    const results = await Promise.all(done.status.artifacts.map(async (a) => (await api<ImageView>('GET', `/apis/ims/v3/images/${a.result_id}`)).body));
    const byName = Object.fromEntries(results.map((r) => [r.name, r]));
    expect(Object.keys(byName).sort()).toEqual(['compute-customized', 'uan-base_cfs_two-images']);
    expect(fileInImage(byName['compute-customized']!, 'etc/layers.txt')).toBe('first\nsecond\n');
    expect(fileInImage(byName['uan-base_cfs_two-images']!, 'etc/layers.txt')).toBe('first\nsecond\n');
    expect(fileInImage(byName['compute-customized']!, 'etc/role.txt')).toBe(`compute ${compute.id}\n`);
    expect(fileInImage(byName['uan-base_cfs_two-images']!, 'etc/role.txt')).toBeUndefined();
    expect(byName['compute-customized']!.metadata?.cfs_source_image_id).toBe(compute.id);
    expect({ compute: rootfsSha256(compute), uan: rootfsSha256(uan) }).toEqual(before);
    expect(fileInImage(compute, 'etc/layers.txt')).toBeUndefined();
    expect(done.status.steps?.map((s) => s.name)).toEqual(expect.arrayContaining(['validate', 'stage', 'inventory', 'ansible', 'package', 'record']));
    expect(done.status.steps?.every((s) => s.state === 'succeeded' && s.end_time)).toBe(true);
    // The engine's workspace memory budget (half this machine's memory by default) let both roots be unpacked into RAM.
    const runnerLog = readFileSync(join(e2e.runtime.dataDir, 'work', 'runner-logs', 'two-images.runner.log'), 'utf8');
    expect(runnerLog.match(/: unpacking into memory \(a tmpfs of/g)).toHaveLength(2);
  });

  it('fails at the failing layer, runs no later layer, registers nothing and leaves no workspace', async () => {
    // Arrange
    const image = await buildSample('fail-base');
    const ok = repoWith({ 'ok.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - copy: { dest: /etc/ok.txt, content: ok }\n' });
    const broken = repoWith({ 'broken.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - name: break on purpose\n      command: /bin/false\n' });
    const never = repoWith({ 'never.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - copy: { dest: /etc/never.txt, content: never }\n' });
    await putConfiguration('breaks', [
      { name: 'ok', clone_url: ok.url, commit: ok.commit, playbook: 'ok.yml' },
      { name: 'broken', clone_url: broken.url, commit: broken.commit, playbook: 'broken.yml' },
      { name: 'never', clone_url: never.url, commit: never.commit, playbook: 'never.yml' },
    ]);
    const imagesBefore = (await api<ImageView[]>('GET', '/apis/ims/v3/images')).body.length;
    // Act
    await api('POST', '/apis/cfs/v3/sessions', { name: 'breaks', configuration_name: 'breaks', target: { definition: 'image', groups: [{ name: 'Compute', members: [image.id] }] } });
    const done = await waitForSession('breaks', isComplete, 120_000);
    // Assert
    expect(done.status.session.succeeded).toBe('false');
    expect(done.status.failure).toMatchObject({ step: 'ansible', layer: 'broken' });
    expect(done.status.failure?.reason).toBeTruthy();
    expect(done.status.artifacts).toEqual([]);
    expect((await api<ImageView[]>('GET', '/apis/ims/v3/images')).body.length).toBe(imagesBefore);
    expect(existsSync(join(e2e.runtime.dataDir, 'work', 'workspaces', 'breaks'))).toBe(false);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(join(e2e.runtime.dataDir, 'work'));
    // The runner wrote its outcome under its own prefix, which the session's run document names.
    const outcomeKey = (await findRunnerLocations(e2e.runtime.ports.artifacts, 'breaks')).outcome;
    expect(outcomeKey).toMatch(/^runner\/[0-9a-f]{32}\/runner-outcome\.json$/);
    const outcome = JSON.parse(readFileSync(join(e2e.runtime.dataDir, 'artifacts', outcomeKey), 'utf8')) as { layers: { name: string; state: string }[] };
    expect(outcome.layers.map((l) => [l.name, l.state])).toEqual([
      ['ok', 'succeeded'],
      ['broken', 'failed'],
      ['never', 'skipped'],
    ]);
  });

  it('waits for an image without a rootfs and starts within 2 seconds of the rootfs being registered', async () => {
    // Arrange
    const layer = repoWith({ 'site.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - copy: { dest: /etc/waited.txt, content: waited }\n' });
    await putConfiguration('waits', [{ name: 'site', clone_url: layer.url, commit: layer.commit, playbook: 'site.yml' }]);
    const record = (await api<ImageView>('POST', '/apis/ims/v3/images', { name: 'late-image' })).body;
    await api('POST', '/apis/cfs/v3/sessions', { name: 'waits', configuration_name: 'waits', target: { definition: 'image', groups: [{ name: 'Compute', members: [record.id] }] } });
    const waiting = await waitForSession('waits', (s) => Boolean(s.status.message), 10_000);
    expect(waiting.status.session.status).toBe('pending');
    expect(waiting.status.message).toContain(record.id);
    // Act: give the record a rootfs (taken from a sample image) through the artifact URL flow.
    const donor = await buildSample('donor');
    const donorManifest = (await api<{ artifacts: { type: string; md5: string; sha256: string; size: number; link: { path: string } }[] }>('GET', `/apis/ims/v3/images/${donor.id}/manifest`)).body;
    const rootfs = donorManifest.artifacts.find((a) => a.type.endsWith('rootfs.squashfs'))!;
    const { body: upload } = await api<{ url: string }>('POST', `/apis/ims/v3/images/${record.id}/artifacts/rootfs/upload-url`, {});
    const put = await fetch(upload.url, { method: 'PUT', body: readFileSync(storedPath(rootfs.link.path)) });
    expect(put.status).toBeLessThan(300);
    const registeredAt = Date.now();
    const registered = await api('PUT', `/apis/ims/v3/images/${record.id}/manifest`, { artifacts: [{ name: 'rootfs', size: rootfs.size, md5: rootfs.md5, sha256: rootfs.sha256 }] });
    expect(registered.status).toBeLessThan(300);
    // Assert
    await waitForSession('waits', (s) => s.status.session.status !== 'pending', 2_000);
    expect(Date.now() - registeredAt).toBeLessThan(2_000);
    const done = await waitForSession('waits', isComplete, 120_000);
    expect(done.status.session.succeeded).toBe('true');
  });
});

describe('a session whose image never arrives', () => {
  it('fails with a clear reason after the image wait timeout', async () => {
    // Arrange
    const short = await startEmbeddedRuntime({ dataDir: tempDir('cfs-e2e-timeout-'), port: 0, workflow: { imageWaitTimeoutSeconds: 2, imagePollIntervalSeconds: 1 } });
    try {
      const layer = repoWith({ 'site.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks: []\n' });
      await api('PUT', '/apis/cfs/v3/configurations/c', { layers: [{ name: 'site', clone_url: layer.url, commit: layer.commit, playbook: 'site.yml' }] }, short);
      const missing = '0b7f9c55-6a5c-4c55-9f8e-1f2d3c4b5a69';
      // Act
      await api('POST', '/apis/cfs/v3/sessions', { name: 'never', configuration_name: 'c', target: { definition: 'image', groups: [{ name: 'Compute', members: [missing] }] } }, short);
      const done = await waitForSession('never', isComplete, 15_000, short);
      // Assert
      expect(done.status.session.succeeded).toBe('false');
      expect(done.status.failure).toMatchObject({ step: 'validate' });
      expect(done.status.failure?.reason).toContain(missing);
      expect(done.status.failure?.reason).toContain('image wait timeout');
    } finally {
      await short.close();
    }
  });
});
