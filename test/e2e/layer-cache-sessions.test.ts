import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../functions/cli/api-client.ts';
import { ImagesApi } from '../../functions/cli/images/images-api.ts';
import { importImage } from '../../functions/cli/images/import-image.ts';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { DEFAULT_COMPRESSION, packRootfs } from '../../functions/cli/images/squashfs.ts';
import type { ImageRecord } from '../../functions/core/model/image.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfs, cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { cliEnv } from '../helpers/api-token.ts';
import { callApi, createComputeSession } from '../helpers/runtime-api.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { fileInImage } from '../helpers/stored-image.ts';

/**
 * The layer cache's control plane on the embedded runtime with the real runner, Ansible and
 * squashfs-tools (issue 19): a rebuild after a change to the second layer reuses the first (a
 * `cached` step naming the session that recorded it), the keys reach the session and the result
 * image, the changes route and `cfs sessions changes` answer each layer's report, a failure at
 * layer 1 says how to resume, and `layer_cache: false` runs every layer.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'cfs-layer-cache-'));
const repo: TempRepo = makeTempRepo();
let runtime: EmbeddedRuntime;
let imageId: string;

const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(runtime, method, path, body);

type SessionView = SessionRecord & { status: SessionRecord['status'] & { layer_keys?: Record<string, string[]> } };

async function completed(name: string): Promise<SessionView> {
  const deadline = Date.now() + 240_000;
  for (;;) {
    const { body } = await api<SessionView>('GET', `/apis/cfs/v3/sessions/${name}`);
    if (body.status.session.status === 'complete') return body;
    if (Date.now() > deadline) throw new Error(`session ${name} did not complete`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const playbook = (tasks: string[]) => ['- hosts: cfs_image', '  gather_facts: false', '  tasks:', ...tasks.map((t) => `    - ${t}`), ''].join('\n');

/** Two layers: `first` pinned at `firstCommit`, `second` at `secondCommit` (so a change to the second leaves the first's key alone). */
async function configure(name: string, firstCommit: string, secondCommit: string): Promise<void> {
  const layers = [
    { name: 'first', clone_url: repo.url, commit: firstCommit, playbook: 'first.yml' },
    { name: 'second', clone_url: repo.url, commit: secondCommit, playbook: 'second.yml' },
  ];
  expect((await api('PUT', `/apis/cfs/v3/configurations/${name}`, { layers })).status).toBe(200);
}

async function createSession(name: string, configurationName: string, extra: Record<string, unknown> = {}): Promise<SessionView> {
  await createComputeSession(runtime, { name, configurationName, imageId, extra });
  return completed(name);
}

const layerSteps = (s: SessionView) => s.status.steps!.filter((st) => st.name === 'ansible' && st.layer !== undefined).map((st) => [st.layer, st.state, st.cached_from?.session]);

beforeAll(async () => {
  ensureBuilt();
  runtime = await startEmbeddedRuntime({ dataDir, port: 0 });
  const built = await cfsBin(cliEnv(runtime), 'images', 'build-sample', '--name', 'cache-base', '--format', 'json');
  expect(built.code).toBe(0);
  imageId = (JSON.parse(built.out) as { id: string }).id;
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  repo.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the layer cache through the embedded server', () => {
  let v1: string;
  let first: SessionView;

  it('records every layer of a first session, keeps the keys on the session and the result, and answers each layer\'s changes', async () => {
    // Arrange
    repo.commit('main', 'first.yml', playbook(['copy: { dest: /etc/cfs-first.txt, content: "first\\n" }']));
    v1 = repo.commit('main', 'second.yml', playbook(['copy: { dest: /etc/cfs-second.txt, content: "v1\\n" }']));
    await configure('cache-config', v1, v1);
    // Act
    first = await createSession('cache-one', 'cache-config');
    const changes = await api<{ files: Array<{ path: string; change: string }> }>('GET', '/apis/cfs/v3/sessions/cache-one/layers/0/changes');
    const result = await api<{ metadata: Record<string, string> }>('GET', `/apis/ims/v3/images/${first.status.artifacts[0]!.result_id}`);
    // Assert
    expect(first.status.session.succeeded, JSON.stringify(first.status.failure)).toBe('true');
    expect(layerSteps(first)).toEqual([
      ['first', 'succeeded', undefined],
      ['second', 'succeeded', undefined],
    ]);
    const keys = first.status.layer_keys![imageId]!;
    expect(keys).toHaveLength(2);
    expect(result.body.metadata.cfs_layer_keys).toBe(keys.join(','));
    expect(changes.status).toBe(200);
    expect(changes.body.files).toContainEqual(expect.objectContaining({ path: '/etc/cfs-first.txt', change: 'added' }));
    expect(changes.body.files.map((f) => f.path)).not.toContain('/etc/cfs-second.txt');
  });

  it('reuses the first layer after a change to the second, shown cached from the first session, and the CLI prints both layers\' changes', async () => {
    // Arrange
    const v2 = repo.commit('main', 'second.yml', playbook(['copy: { dest: /etc/cfs-second.txt, content: "v2\\n" }']));
    await configure('cache-config', v1, v2);
    // Act
    const second = await createSession('cache-two', 'cache-config');
    const described = await cfs(runtime, 'sessions', 'describe', 'cache-two');
    const printed = await cfs(runtime, 'sessions', 'changes', 'cache-two');
    // Assert
    expect(second.status.session.succeeded, JSON.stringify(second.status.failure)).toBe('true');
    expect(layerSteps(second)).toEqual([
      ['first', 'cached', 'cache-one'],
      ['second', 'succeeded', undefined],
    ]);
    expect(second.status.layer_keys![imageId]![0]).toBe(first.status.layer_keys![imageId]![0]);
    expect(second.status.layer_keys![imageId]![1]).not.toBe(first.status.layer_keys![imageId]![1]);
    expect(described.out).toMatch(/cached \(from session cache-one, \d+ s old\)/);
    expect(printed.code).toBe(0);
    expect(printed.out).toContain(`layer 0 first (image ${imageId})`);
    expect(printed.out).toContain('    A /etc/cfs-first.txt');
    expect(printed.out).toMatch(/layer 1 second[^\n]*\n(?:.*\n)*? {4}[AM] \/etc\/cfs-second\.txt/);
  });

  it('fails at layer 1 with a resume hint, then a session created again reuses layer 0; layer_cache false runs both', async () => {
    // Arrange
    const broken = repo.commit('main', 'second.yml', playbook(['command: /bin/false']));
    await configure('cache-broken', v1, broken);
    const fixed = repo.commit('main', 'second.yml', playbook(['copy: { dest: /etc/cfs-second.txt, content: "fixed\\n" }']));
    // Act
    const failed = await createSession('cache-fails', 'cache-broken');
    const described = await cfs(runtime, 'sessions', 'describe', 'cache-fails');
    const gone = await api<{ detail: string }>('GET', '/apis/cfs/v3/sessions/cache-fails/layers/1/changes');
    await configure('cache-broken', v1, fixed);
    const resumed = await createSession('cache-resumed', 'cache-broken');
    const full = await createSession('cache-full', 'cache-broken', { layer_cache: false });
    // Assert
    expect(failed.status.failure, JSON.stringify(failed.status.failure)).toMatchObject({ step: 'ansible', layer: 'second' });
    expect(described.out).toContain('layer 0 is reused from the layer cache');
    expect(gone.status).toBe(404);
    expect(gone.body.detail).toContain('failed: a failed layer records no changes');
    expect(layerSteps(resumed)).toEqual([
      ['first', 'cached', 'cache-one'],
      ['second', 'succeeded', undefined],
    ]);
    expect(layerSteps(full)).toEqual([
      ['first', 'succeeded', undefined],
      ['second', 'succeeded', undefined],
    ]);
  });
});

describe('two images of one rootfs in one session', () => {
  it('records each under its own key with the host name the play wrote into it, and the same session again reuses each its own', async () => {
    // Arrange: one squashfs registered twice, so both images have the same rootfs digest and groups.
    const work = mkdtempSync(join(tmpdir(), 'cfs-twins-'));
    await buildSampleRoot(join(work, 'root'));
    await packRootfs(join(work, 'root'), join(work, 'rootfs.squashfs'), DEFAULT_COMPRESSION);
    const images = new ImagesApi(new ApiClient({ env: { CFS_API_URL: runtime.url, CFS_API_TOKEN: runtime.apiToken } }));
    const twins: string[] = [];
    for (const name of ['twin-a', 'twin-b']) twins.push((await importImage(images, { name, arch: 'x86_64', squashfs: join(work, 'rootfs.squashfs') })).id);
    rmSync(work, { recursive: true, force: true });
    const named = repo.commit('main', 'host.yml', playbook(['copy: { dest: /etc/cfs-host.txt, content: "{{ inventory_hostname }}\\n" }']));
    expect((await api('PUT', '/apis/cfs/v3/configurations/twins', { layers: [{ name: 'host', clone_url: repo.url, commit: named, playbook: 'host.yml' }] })).status).toBe(200);
    const create = async (name: string) => {
      const target = { definition: 'image', groups: [{ name: 'Compute', members: twins }] };
      expect((await api('POST', '/apis/cfs/v3/sessions', { name, configuration_name: 'twins', target })).status).toBe(201);
      return completed(name);
    };

    // Act
    const first = await create('twins-first');
    const changes = await Promise.all(twins.map((id) => api<{ files: Array<{ path: string; change: string }> }>('GET', `/apis/cfs/v3/sessions/twins-first/layers/0/changes?image_id=${id}`)));
    const again = await create('twins-again');
    const results = await Promise.all(again.status.artifacts.map(async (a) => [a.image_id, fileInImage(dataDir, (await api<ImageRecord>('GET', `/apis/ims/v3/images/${a.result_id}`)).body, 'etc/cfs-host.txt')]));

    // Assert
    expect(first.status.session.succeeded, JSON.stringify(first.status.failure)).toBe('true');
    expect(first.status.layer_keys![twins[0]!]![0]).not.toBe(first.status.layer_keys![twins[1]!]![0]);
    expect(changes.map((c) => [c.status, c.body.files.filter((f) => f.path === '/etc/cfs-host.txt').map((f) => f.change)])).toEqual([
      [200, ['added']],
      [200, ['added']],
    ]);
    expect(again.status.session.succeeded, JSON.stringify(again.status.failure)).toBe('true');
    expect(layerSteps(again)).toEqual([['host', 'cached', 'twins-first']]);
    expect(Object.fromEntries(results)).toEqual(Object.fromEntries(twins.map((id) => [id, `${id}\n`])));
  });
});
