import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import type { ProductEvent } from '../../functions/ports/event-publisher.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { cliEnv } from '../helpers/api-token.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { callApi } from '../helpers/runtime-api.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * A session failed with `debug_on_failure` on the embedded runtime, with real Ansible, git and
 * squashfs-tools: as in CFS it stays `running` with `succeeded: none` while its hold lasts (the
 * failure and the hold in its status), then completes as failed when the hold ends by itself.
 * The hold keeps its workspace but no runner slot: with one runner at a time, another session
 * runs to its end during the hold. `cfs sessions create --wait` returns when the hold starts.
 */

/** Long enough for a second session to run whole during the hold, short enough to wait out. */
const HOLD_SECONDS = 35;

const dataDir = mkdtempSync(join(tmpdir(), 'cfs-hold-'));
const repo: TempRepo = makeTempRepo();
let runtime: EmbeddedRuntime;
let imageId: string;
const completed: ProductEvent[] = [];

const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(runtime, method, path, body);
const until = <T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string) => waitFor(probe, timeoutMs, what, 200);

const session = async (name: string) => (await api<SessionRecord>('GET', `/apis/cfs/v3/sessions/${name}`)).body;
const complete = (name: string, timeoutMs: number) => until(async () => { const s = await session(name); return s.status.session.status === 'complete' ? s : undefined; }, timeoutMs, `${name} to complete`);
const names = async (query: string) => (await api<{ sessions: Array<{ name: string }> }>('GET', `/apis/cfs/v3/sessions?${query}`)).body.sessions.map((s) => s.name);
const v2Names = async (query: string) => (await api<Array<{ name: string }>>('GET', `/apis/cfs/v2/sessions?${query}`)).body.map((s) => s.name);
const workspace = (name: string) => join(dataDir, 'work', 'workspaces', name);

/** A one-layer configuration `name` running `tasks` on the image hosts. */
async function configuration(name: string, tasks: string[]): Promise<void> {
  const file = `${name}.yml`;
  const commit = repo.commit('main', file, ['- hosts: cfs_image', '  gather_facts: false', '  tasks:', ...tasks.map((t) => `    - ${t}`), ''].join('\n'));
  expect((await api('PUT', `/apis/cfs/v3/configurations/${name}`, { layers: [{ name, clone_url: repo.url, commit, playbook: file }] })).status).toBe(200);
}

beforeAll(async () => {
  ensureBuilt();
  runtime = await startEmbeddedRuntime({ dataDir, port: 0, maxConcurrentRuns: 1, workflow: { debugWaitSeconds: HOLD_SECONDS } });
  runtime.bus.subscribe('Session Completed', (event) => void completed.push(event));
  const built = await cfsBin(cliEnv(runtime), 'images', 'build-sample', '--name', 'hold-base', '--format', 'json');
  expect(built.code, built.err).toBe(0);
  imageId = (JSON.parse(built.out) as { id: string }).id;
  await configuration('broken', ['copy: { dest: /etc/debug-me, content: "kept\\n" }', 'command: /bin/false']);
  await configuration('fine', ['copy: { dest: /etc/fine, content: "fine\\n" }']);
}, 300_000);

afterAll(async () => {
  await runtime?.close();
  repo.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a failed session held for debugging', () => {
  it('stays running with succeeded none while held, lets another session run meanwhile with one runner slot, and completes as failed when the hold ends', async () => {
    // Act: create and wait; the wait ends when the hold starts.
    const created = await cfsBin(cliEnv(runtime), 'sessions', 'create', '--name', 'held', '--configuration-name', 'broken', '--target-group', 'Compute', imageId, '--debug-on-failure', '--wait');
    const heldV3 = await session('held');
    const heldV2 = (await api<{ status: { session: { status: string; succeeded: string; completionTime?: string } } }>('GET', '/apis/cfs/v2/sessions/held')).body;
    const waitedAgain = await cfsBin(cliEnv(runtime), 'sessions', 'wait', 'held', '--format', 'json');
    const listed = {
      running: await names('status=running'),
      none: await names('succeeded=none'),
      complete: await names('status=complete'),
      v2Running: await v2Names('status=running'),
      v2None: await v2Names('succeeded=none'),
    };
    const swept = await runtime.sweeper.sweep();
    const kept = readFileSync(join(heldV3.status.debug!.images[0]!.root, 'etc', 'debug-me'), 'utf8');
    // Another session with the only runner slot, while the first is held.
    await api('POST', '/apis/cfs/v3/sessions', { name: 'meanwhile', configuration_name: 'fine', target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] } });
    const meanwhile = await complete('meanwhile', (HOLD_SECONDS - 5) * 1000);
    const stillHeld = await session('held');
    const announcedDuringHold = completed.map((e) => e.detail.name);
    const ended = await complete('held', (HOLD_SECONDS + 30) * 1000);
    await runtime.engine.idle();

    // Assert: the wait returned at the hold's start, printed how to enter it and failed.
    expect(created.code, created.err).toBe(1);
    expect(created.out).toContain(`cfs sessions debug held --enter ${imageId}`);
    expect(created.out).toContain('cfs sessions release held');
    expect(created.err).toMatch(/^Error: session held failed at ansible \(layer broken, image [0-9a-f-]{36}\): .*; held for debugging until \S+: cfs sessions debug held --enter [0-9a-f-]{36}\n$/);
    expect(created.ms).toBeLessThan(HOLD_SECONDS * 1000);
    expect(waitedAgain.code).toBe(1);
    expect((JSON.parse(waitedAgain.out) as SessionRecord).status.session.status).toBe('running');
    expect(waitedAgain.err).toContain(`cfs sessions debug held --enter ${imageId}`);
    // While held: running, none, the failure and the hold shown, in v3 and v2 alike.
    expect(heldV3.status.session).toMatchObject({ status: 'running', succeeded: 'none' });
    expect(heldV3.status.session.completion_time).toBeUndefined();
    expect(heldV3.status.failure).toMatchObject({ step: 'ansible', layer: 'broken' });
    expect(heldV3.status.debug).toMatchObject({ workspace: workspace('held'), images: [expect.objectContaining({ image_id: imageId, enter: `cfs sessions debug held --enter ${imageId}` })] });
    expect(Date.parse(heldV3.status.debug!.until)).toBeGreaterThan(Date.now() - 60_000);
    expect(heldV2.status.session).toMatchObject({ status: 'running', succeeded: 'none' });
    expect(listed).toEqual({ running: ['held'], none: ['held'], complete: [], v2Running: ['held'], v2None: ['held'] });
    expect(swept.sessions).toEqual([]);
    expect(swept.workspaces).toEqual([]);
    expect(kept).toBe('kept\n');
    // The hold took no runner slot: the other session ran whole during it.
    expect(meanwhile.status.session).toMatchObject({ status: 'complete', succeeded: 'true' });
    expect(stillHeld.status.session).toMatchObject({ status: 'running', succeeded: 'none' });
    expect(stillHeld.status.debug?.released_at).toBeUndefined();
    expect(announcedDuringHold).toEqual(['meanwhile']);
    // Once the hold ended by itself: complete, failed, ended then, announced then, workspace gone.
    expect(ended.status.session).toMatchObject({ status: 'complete', succeeded: 'false', completion_time: ended.status.debug!.released_at });
    expect(Date.parse(ended.status.debug!.released_at!)).toBeGreaterThanOrEqual(Date.parse(heldV3.status.debug!.until) - 100);
    expect(ended.status.failure).toEqual(heldV3.status.failure);
    expect(completed.map((e) => [e.detail.name, e.detail.succeeded])).toEqual([['meanwhile', 'true'], ['held', 'false']]);
    expect(existsSync(workspace('held'))).toBe(false);
    expect(await names('status=complete&succeeded=false')).toEqual(['held']);
  }, 300_000);
});
