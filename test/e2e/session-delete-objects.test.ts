import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { findRunnerLocations } from '../../functions/core/workflow/run-document-store.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { cliEnv } from '../helpers/api-token.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { callApi } from '../helpers/runtime-api.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Deleting a session on the embedded runtime, with real Ansible, squashfs-tools and git: its
 * documents, logs and runner prefix leave the store with it, and a new session of the same name
 * never shows the old one's logs. One sample image serves every session.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'cfs-delete-'));
const repo: TempRepo = makeTempRepo();
/** An image id no image has: a session targeting it waits for its images, pending, and writes nothing to the store. */
const MISSING_IMAGE = '00000000-0000-4000-8000-000000000000';
let runtime: EmbeddedRuntime;
let imageId: string;

const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(runtime, method, path, body);
const until = <T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string) => waitFor(probe, timeoutMs, what, 200);

const session = async (name: string) => (await api<SessionRecord>('GET', `/apis/cfs/v3/sessions/${name}`)).body;
const logs = async (name: string) => (await api<{ text: string }>('GET', `/apis/cfs/v3/sessions/${name}/logs?max_bytes=1048576`)).body.text;

/** A one-layer configuration running `tasks` on the image hosts. */
async function configuration(name: string, tasks: string[]): Promise<void> {
  const file = `${name}.yml`;
  const commit = repo.commit('main', file, ['- hosts: cfs_image', '  gather_facts: false', '  tasks:', ...tasks.map((t) => `    - ${t}`), ''].join('\n'));
  const put = await api('PUT', `/apis/cfs/v3/configurations/${name}`, { layers: [{ name, clone_url: repo.url, commit, playbook: file }] });
  expect(put.status).toBe(200);
}

async function createSession(name: string, configurationName: string, image = imageId): Promise<void> {
  const created = await api('POST', '/apis/cfs/v3/sessions', {
    name,
    configuration_name: configurationName,
    target: { definition: 'image', groups: [{ name: 'Compute', members: [image] }] },
  });
  expect(created.status).toBe(201);
}

/** Every object the store keeps for a session: under `sessions/<name>/` and under the runner prefix given. */
async function storedFor(name: string, runnerPrefix: string): Promise<string[]> {
  return [...(await runtime.ports.artifacts.list(`sessions/${name}/`)), ...(await runtime.ports.artifacts.list(runnerPrefix))];
}

beforeAll(async () => {
  ensureBuilt();
  runtime = await startEmbeddedRuntime({ dataDir, port: 0 });
  const built = await cfsBin(cliEnv(runtime), 'images', 'build-sample', '--name', 'delete-base', '--format', 'json');
  expect(built.code).toBe(0);
  imageId = (JSON.parse(built.out) as { id: string }).id;
  await configuration('fails', ['debug: { msg: "old-run-marker" }', 'fail: { msg: "this layer fails" }']);
  await configuration('endless', ['debug: { msg: "running-marker" }', 'command: sleep 300']);
});

afterAll(async () => {
  await runtime?.close();
  repo.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('deleting a session on the embedded runtime', () => {
  it('removes a failed session with its documents, logs and runner prefix, and a new session of the same name shows none of its logs', async () => {
    // Arrange: a session that ran and failed, its logs in the store.
    await createSession('again', 'fails');
    const failed = await until(async () => ((await session('again')).status.session.status === 'complete' ? session('again') : undefined), 120_000, 'the session to fail');
    expect(failed.status.session.succeeded).toBe('false');
    expect(await logs('again')).toContain('old-run-marker');
    const runnerPrefix = (await findRunnerLocations(runtime.ports.artifacts, 'again')).prefix!;
    expect(await storedFor('again', runnerPrefix)).not.toEqual([]);
    // Act
    const deleted = await api('DELETE', '/apis/cfs/v3/sessions/again');
    await createSession('again', 'fails', MISSING_IMAGE);
    const fresh = await logs('again');
    // Assert
    expect(deleted.status).toBe(204);
    expect(await storedFor('again', runnerPrefix)).toEqual([]);
    expect(existsSync(join(dataDir, 'artifacts', 'sessions', 'again'))).toBe(false);
    expect(fresh).toBe('');
    expect((await session('again')).status.session.status).toBe('pending');
    expect((await api('DELETE', '/apis/cfs/v3/sessions/again')).status).toBe(204);
  });

  it("removes a running session's objects once its runner has stopped, while a session of the same name created meanwhile shows none of them", async () => {
    // Arrange: the layer runs (its first log lines are in the store).
    await createSession('busy', 'endless');
    await until(async () => ((await logs('busy')).includes('running-marker') ? true : undefined), 120_000, 'the layer to print its marker');
    const runnerPrefix = (await findRunnerLocations(runtime.ports.artifacts, 'busy')).prefix!;
    // Act: delete it, and at once create a session of the same name (it waits for an image, pending).
    const deleted = await api('DELETE', '/apis/cfs/v3/sessions/busy');
    await createSession('busy', 'endless', MISSING_IMAGE);
    const fresh = await logs('busy');
    const left = await until(async () => ((await storedFor('busy', runnerPrefix)).length === 0 ? [] : undefined), 60_000, "the deleted session's objects to go");
    // Assert
    expect(deleted.status).toBe(204);
    expect(fresh).not.toContain('running-marker');
    expect(left).toEqual([]);
    expect(await logs('busy')).toBe('');
    expect((await api('DELETE', '/apis/cfs/v3/sessions/busy')).status).toBe(204);
    await runtime.engine.idle();
    expect(await storedFor('busy', runnerPrefix)).toEqual([]);
  });
});
