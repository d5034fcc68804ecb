import { openSync, closeSync, readSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { readRunDocument } from '../../functions/core/workflow/run-document-store.ts';
import { ApiClient } from '../../functions/cli/api-client.ts';
import { ImagesApi } from '../../functions/cli/images/images-api.ts';
import { importImage } from '../../functions/cli/images/import-image.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { embeddedRuntimeForFile } from '../helpers/e2e-runtime.ts';
import { callApi } from '../helpers/runtime-api.ts';

/**
 * All or nothing, through the embedded runtime with real Ansible and squashfs-tools: a session
 * over two images whose second result is corrupted between the runner's upload and its
 * verification shows the first result at no poll of the API, announces nothing and starts no
 * automation, although the first result was verified and prepared.
 */
const e2e = embeddedRuntimeForFile('cfs-e2e-aon-');
const { repos, tempDir } = e2e;

const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(e2e.runtime, method, path, body);

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Flips the first byte of a stored file in place, behind the store's back (same size). */
function corrupt(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    const first = Buffer.alloc(1);
    readSync(fd, first, 0, 1, 0);
    writeSync(fd, Buffer.from([first[0]! ^ 0xff]), 0, 1, 0);
  } finally {
    closeSync(fd);
  }
}

describe('a session whose second image fails verification', () => {
  it('never lists, gets, announces or builds on its first result, which was verified and prepared', async () => {
    // Arrange
    const { runtime } = e2e;
    const root = tempDir('cfs-aon-root-');
    await buildSampleRoot(root);
    const images = new ImagesApi(new ApiClient({ env: { CFS_API_URL: runtime.url, CFS_API_TOKEN: runtime.apiToken } }));
    const first = await importImage(images, { name: 'aon-first', arch: 'x86_64', rootfs: root });
    const second = await importImage(images, { name: 'aon-second', arch: 'x86_64', rootfs: root });
    const layer = repos.with({ 'site.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - copy: { dest: /etc/aon.txt, content: "aon\\n" }\n' });
    expect((await api('PUT', '/apis/cfs/v3/configurations/aon', { layers: [{ name: 'site', clone_url: layer.url, commit: layer.commit, playbook: 'site.yml' }] })).status).toBe(200);
    // An automation that would build on the first result the moment it were announced.
    const automation = await api('PUT', '/apis/cfs/v3/automations/aon-watch', {
      configuration_name: 'aon',
      source: { name_pattern: 'aon-first_cfs_*', arch: 'x86_64' },
      groups: ['Compute'],
      on_image_registered: true,
    });
    expect(automation.status).toBe(200);
    const announced: string[] = [];
    runtime.bus.subscribe('Image Registered', async (event) => void announced.push(String(event.detail.id)));
    const planOf = async () => (await runtime.ports.sessions.get('aon'))?.status.plan ?? [];
    // The fault: the second result's rootfs is corrupted on disk once the first result is prepared,
    // just before PackageAndUpload promotes it out of the runner's prefix (between the runner and the verification).
    const store = runtime.ports.artifacts as FsArtifactStore;
    const promote = store.promote.bind(store);
    let firstWasPrepared = false;
    store.promote = async (from, to) => {
      const plan = await planOf();
      const firstPlan = plan.find((p) => p.image_id === first.id);
      const runnerPrefix = (await readRunDocument(store, 'aon'))?.images.find((i) => i.image_id === second.id)?.upload_prefix;
      if (firstPlan && runnerPrefix && from === `${runnerPrefix}rootfs`) {
        await until('the first result to be prepared', () => runtime.ports.images.get(firstPlan.result_id, { includePending: true }), Boolean, 60_000);
        firstWasPrepared = true;
        corrupt(store.pathOf(from));
      }
      return promote(from, to);
    };
    // Act
    const created = await api('POST', '/apis/cfs/v3/sessions', {
      name: 'aon',
      configuration_name: 'aon',
      target: { definition: 'image', groups: [{ name: 'Compute', members: [first.id, second.id] }] },
    });
    const firstResult = (await until('the session to be staged', planOf, (plan) => plan.some((p) => p.image_id === first.id), 60_000)).find((p) => p.image_id === first.id)!.result_id;
    const seen: string[] = [];
    let pollsWhilePrepared = 0;
    let session: SessionRecord | undefined;
    while (session?.status.session.status !== 'complete') {
      const prepared = await runtime.ports.images.get(firstResult, { includePending: true });
      const got = await api('GET', `/apis/ims/v3/images/${firstResult}`);
      const listed = await api<{ id: string }[]>('GET', '/apis/ims/v3/images');
      if (got.status !== 404) seen.push(`GET ${got.status}`);
      if (listed.body.some((image) => image.id === firstResult)) seen.push('listed');
      if (prepared) pollsWhilePrepared++;
      session = (await api<SessionRecord>('GET', '/apis/cfs/v3/sessions/aon')).body;
      await new Promise((r) => setTimeout(r, 25));
    }
    await runtime.engine.idle();
    await runtime.bus.idle();
    // Assert
    expect(created.status).toBe(201);
    expect(firstWasPrepared).toBe(true);
    expect(pollsWhilePrepared).toBeGreaterThan(0);
    expect(session.status.session.succeeded).toBe('false');
    expect(session.status.failure).toMatchObject({ step: 'package', image_id: second.id, reason: expect.stringMatching(/md5/) });
    expect(session.status.artifacts).toEqual([]);
    expect(seen).toEqual([]);
    expect(announced).toEqual([]);
    expect((await runtime.ports.sessions.list()).filter((s) => s.tags.automation === 'aon-watch')).toEqual([]);
    expect(await runtime.ports.images.get(firstResult, { includePending: true })).toBeUndefined();
    expect(await runtime.ports.artifacts.list(`boot-images/${firstResult}/`)).toEqual([]);
  });
});
