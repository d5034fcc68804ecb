import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { findRunnerLocations } from '../../functions/core/workflow/run-document-store.ts';
import { WORKSPACE_MARKER } from '../../functions/runner/workspace.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { BIN, cfsBin, ensureBuilt, REPO_ROOT } from '../cli/cli-harness.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { bearer, cliEnv } from '../helpers/api-token.ts';
import { createComputeSession } from '../helpers/runtime-api.ts';

/**
 * Operating sessions on the embedded runtime with real Ansible, squashfs-tools and git: logs
 * followed while a playbook runs, cancellation, debug holds, retention. One sample image
 * (~24 MB root) serves every session.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'cfs-ops-'));
const repo: TempRepo = makeTempRepo();
let runtime: EmbeddedRuntime;
let imageId: string;

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { ...bearer(runtime), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T, ms: performance.now() - started };
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const session = async (name: string) => (await api<SessionRecord>('GET', `/apis/cfs/v3/sessions/${name}`)).body;
const complete = (name: string) => until(async () => ((await session(name)).status.session.status === 'complete' ? session(name) : undefined), 120_000, `${name} to complete`);
/** A failed session once its debug hold starts (it stays `running` until the hold ends). */
const held = (name: string) => until(async () => { const s = await session(name); return s.status.debug && !s.status.debug.released_at ? s : undefined; }, 120_000, `${name}'s debug hold to start`);

/** A one-layer configuration running `playbook` (a list of tasks on the image hosts). */
async function configuration(name: string, tasks: string[]): Promise<void> {
  const file = `${name}.yml`;
  const commit = repo.commit('main', file, ['- hosts: cfs_image', '  gather_facts: false', '  tasks:', ...tasks.map((t) => `    - ${t}`), ''].join('\n'));
  const put = await api('PUT', `/apis/cfs/v3/configurations/${name}`, { layers: [{ name, clone_url: repo.url, commit, playbook: file }] });
  expect(put.status).toBe(200);
}

function createSession(name: string, configurationName: string, extra: Record<string, unknown> = {}): Promise<void> {
  return createComputeSession(runtime, { name, configurationName, imageId, extra });
}

/** Processes working for this data directory: runners and Ansible (by their command line) and whatever runs chrooted into an image root there. */
function processesOf(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const root = readlinkSync(`/proc/${pid}/root`);
      if (cmdline.includes(dir) || root.startsWith(dir)) found.push(`${pid} (root ${root}): ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const workspace = (name: string) => join(dataDir, 'work', 'workspaces', name);
const imageCount = async () => (await api<unknown[]>('GET', '/apis/ims/v3/images')).body.length;

beforeAll(async () => {
  ensureBuilt();
  runtime = await startEmbeddedRuntime({ dataDir, port: 0, workflow: { debugWaitSeconds: 3 } });
  const built = await cfsBin(cliEnv(runtime), 'images', 'build-sample', '--name', 'ops-base', '--format', 'json');
  expect(built.code).toBe(0);
  imageId = (JSON.parse(built.out) as { id: string }).id;
});

afterAll(async () => {
  await runtime?.close();
  repo.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('operating sessions on the embedded runtime', () => {
  it('prints log lines with `cfs sessions logs --follow` while the playbook still runs, and ends when the session does', async () => {
    // Arrange: a debug task, a 4 s pause, another debug task.
    await configuration('follow', ['debug: { msg: "first-marker" }', 'command: sleep 4', 'debug: { msg: "second-marker" }']);
    await createSession('follow', 'follow');
    const follower = spawn(process.execPath, [BIN, 'sessions', 'logs', 'follow', '--follow'], { env: { ...process.env, ...cliEnv(runtime) }, cwd: REPO_ROOT });
    const seen: Array<{ text: string; at: number }> = [];
    let output = '';
    let statusAtFirst: Promise<string> | undefined;
    follower.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      seen.push({ text: chunk.toString(), at: Date.now() });
      if (!statusAtFirst && output.includes('first-marker')) statusAtFirst = session('follow').then((s) => s.status.session.status);
    });
    // Act
    const code = await new Promise<number | null>((resolve) => follower.once('close', resolve));
    const done = await session('follow');
    // Assert
    expect(code).toBe(0);
    expect(await statusAtFirst).toBe('running');
    const firstAt = seen.find((s) => s.text.includes('first-marker'))!.at;
    const secondAt = seen.find((s) => s.text.includes('second-marker'))!.at;
    expect(secondAt - firstAt).toBeGreaterThanOrEqual(2_500);
    expect(output).toMatch(/^# CFS session follow, layer 0 'follow': file:\/\//);
    expect(output).toContain('PLAY RECAP');
    expect(done.status.session.succeeded).toBe('true');
    const layerStep = done.status.steps?.find((s) => s.name === 'ansible' && s.layer === 'follow');
    expect(layerStep).toMatchObject({ state: 'succeeded' });
    expect(Date.parse(layerStep!.end_time!) - Date.parse(layerStep!.start_time!)).toBeGreaterThanOrEqual(4_000);
    expect((done as SessionRecord & { logs: string }).logs).toBe('/apis/cfs/v3/sessions/follow/logs');
  });

  it('answers a delete of a running session at once, then leaves no process, no workspace and no new image', async () => {
    // Arrange
    await configuration('endless', ['command: sleep 300']);
    const before = await imageCount();
    await createSession('cancelled', 'endless');
    await until(async () => ((await session('cancelled')).status.steps?.some((s) => s.layer === 'endless' && s.state === 'running') ? true : undefined), 60_000, 'the layer to run');
    await until(() => (processesOf(workspace('cancelled')).some((p) => p.includes('sleep 300')) ? true : undefined), 30_000, 'the playbook to run sleep in the image root');
    // Act
    const deleted = await api('DELETE', '/apis/cfs/v3/sessions/cancelled');
    await runtime.engine.idle();
    // Assert
    expect(deleted.status).toBe(204);
    expect(deleted.ms).toBeLessThan(1_000);
    expect((await api('GET', '/apis/cfs/v3/sessions/cancelled')).status).toBe(404);
    expect(processesOf(dataDir)).toEqual([]);
    expect(existsSync(workspace('cancelled'))).toBe(false);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(dataDir);
    expect(await imageCount()).toBe(before);
  });

  it('holds a failed session for debugging and ends the hold by itself after debug_wait_time', async () => {
    // Arrange
    await configuration('broken', ['copy: { dest: /etc/debug-me, content: "kept\\n" }', 'command: /bin/false']);
    await createSession('held', 'broken', { debug_on_failure: true });
    // Act
    const failed = await held('held');
    const heldRoot = failed.status.debug!.images[0]!.root;
    const kept = readFileSync(join(heldRoot, 'etc', 'debug-me'), 'utf8');
    const released = await complete('held');
    // Assert: running with succeeded none while held (as CFS), its failure known; complete and failed once the hold ended.
    expect(failed.status.session).toMatchObject({ status: 'running', succeeded: 'none' });
    expect(failed.status.failure).toMatchObject({ step: 'ansible', layer: 'broken' });
    expect(failed.status.debug).toMatchObject({ workspace: workspace('held'), inventory: join(workspace('held'), 'inventory', 'inventory.yaml') });
    expect(kept).toBe('kept\n');
    expect(released.status.session).toMatchObject({ status: 'complete', succeeded: 'false', completion_time: released.status.debug!.released_at });
    expect(Date.parse(released.status.debug!.released_at!)).toBeGreaterThanOrEqual(Date.parse(failed.status.debug!.until) - 100);
    await runtime.engine.idle();
    expect(existsSync(workspace('held'))).toBe(false);
    expect(processesOf(dataDir)).toEqual([]);
  });

  it('prints how to enter the roots and rerun a layer with `cfs sessions debug`, whose command works, and ends the hold at once with `cfs sessions release`', async () => {
    // Arrange: holds last 10 minutes now (the option wins over the server's setting).
    expect((await api('PATCH', '/apis/cfs/v3/options', { debug_wait_time: 600 })).status).toBe(200);
    await createSession('released', 'broken', { debug_on_failure: true });
    const failed = await held('released');
    const heldRoot = failed.status.debug!.images[0]!.root;
    // Act
    const debug = await cfsBin(cliEnv(runtime), 'sessions', 'debug', 'released');
    const rerun = await cfsBin(cliEnv(runtime), 'sessions', 'debug', 'released', '--rerun', '0');
    const entered = await cfsBin(cliEnv(runtime), 'sessions', 'debug', 'released', '--enter', imageId, '--', '-c', 'cat /etc/debug-me; ls /proc/self >/dev/null && echo proc-mounted');
    const release = await cfsBin(cliEnv(runtime), 'sessions', 'release', 'released');
    // Assert
    expect(debug.code).toBe(0);
    expect(debug.out).toContain(`# image ${imageId} (${heldRoot})\n  cfs sessions debug released --enter ${imageId}\n`);
    expect(debug.out).toContain("# layer 0 'broken' (failed)\n  cfs sessions debug released --rerun 0");
    expect(failed.status.debug!.images[0]!.enter).toBe(`cfs sessions debug released --enter ${imageId}`);
    expect(rerun.code).toBe(2);
    expect(rerun.out).toContain('/bin/false');
    expect(entered.out).toBe('kept\nproc-mounted\n');
    expect(release.code).toBe(0);
    expect(release.out).toContain(`Released session released: its workspace ${workspace('released')} is removed.`);
    expect(existsSync(workspace('released'))).toBe(false);
    expect((await session('released')).status.debug?.released_at).toBeDefined();
    expect((await session('released')).status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
    expect(runtime.engine.holdArmed('released')).toBe(false);
  });

  it('never shows clone URL credentials in status, logs, events or the runner log', async () => {
    // Arrange: a layer whose repository (with a password in its URL) cannot be reached.
    const events: string[] = [];
    runtime.bus.subscribe('Session Completed', (event) => void events.push(JSON.stringify(event)));
    const put = await api('PUT', '/apis/cfs/v3/configurations/secret', {
      layers: [{ name: 'secret', clone_url: 'https://deploy:s3cret-token@127.0.0.1:9/site.git', commit: 'a'.repeat(40), playbook: 'site.yml' }],
    });
    expect(put.status).toBe(200);
    // Act
    await createSession('secret', 'secret');
    const failed = await complete('secret');
    await runtime.engine.idle();
    const v3 = JSON.stringify((await api('GET', '/apis/cfs/v3/sessions/secret')).body);
    const v2 = JSON.stringify((await api('GET', '/apis/cfs/v2/sessions/secret')).body);
    const logs = JSON.stringify((await api('GET', '/apis/cfs/v3/sessions/secret/logs')).body);
    const outcome = readFileSync(join(dataDir, 'artifacts', (await findRunnerLocations(runtime.ports.artifacts, 'secret')).outcome), 'utf8');
    const runnerLog = readFileSync(join(dataDir, 'work', 'runner-logs', 'secret.runner.log'), 'utf8');
    // Assert
    expect(failed.status.failure).toMatchObject({ step: 'ansible', layer: 'secret' });
    expect(failed.status.failure?.reason).toContain('https://127.0.0.1:9/site.git');
    expect(events.length).toBeGreaterThan(0);
    for (const text of [v3, v2, logs, outcome, runnerLog, ...events]) expect(text).not.toContain('s3cret-token');
  });

  it('removes an expired session with its logs, keeps its result image, and sweeps a workspace no live session owns', async () => {
    // Arrange: `follow` completed; say it completed 8 days ago. An orphaned workspace with a marker.
    const follow = await session('follow');
    const result = follow.status.artifacts[0]!.result_id;
    await runtime.ports.sessions.update('follow', (s) => ({
      ...s,
      status: { ...s.status, session: { ...s.status.session, start_time: '2020-01-01T00:00:00Z', completion_time: '2020-01-01T00:01:00Z' } },
    }));
    mkdirSync(workspace('ghost'), { recursive: true });
    writeFileSync(join(workspace('ghost'), WORKSPACE_MARKER), '');
    writeFileSync(join(workspace('ghost'), 'left-behind'), 'x');
    // Its logs lie under its runner's prefix, which its run document under sessions/ names.
    const runnerPrefix = (await findRunnerLocations(runtime.ports.artifacts, 'follow')).prefix!;
    expect(existsSync(join(dataDir, 'artifacts', runnerPrefix, 'logs'))).toBe(true);
    // Act
    const swept = await runtime.sweeper.sweep();
    // Assert
    expect(swept.sessions).toEqual(['follow']);
    expect(swept.workspaces).toEqual(['ghost']);
    expect((await api('GET', '/apis/cfs/v3/sessions/follow')).status).toBe(404);
    expect(existsSync(join(dataDir, 'artifacts', 'sessions', 'follow'))).toBe(false);
    expect(await runtime.ports.artifacts.list(runnerPrefix)).toEqual([]);
    expect(existsSync(join(dataDir, 'work', 'runner-logs', 'follow.runner.log'))).toBe(false);
    expect(existsSync(workspace('ghost'))).toBe(false);
    const image = await api<{ metadata: Record<string, string> }>('GET', `/apis/ims/v3/images/${result}`);
    expect(image.status).toBe(200);
    expect(image.body.metadata.cfs_session).toBe('follow');
    expect((await session('released')).name).toBe('released');
  });
});
