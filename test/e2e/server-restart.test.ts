import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { BIN, cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { bearer, cliEnv } from '../helpers/api-token.ts';
import { makeTempRepo } from '../helpers/git-repo.ts';
import { waitFor } from '../helpers/wait.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'cfs-restart-'));
const repo = makeTempRepo();
const servers: ChildProcess[] = [];

/** Starts `cfs server` as its own process and resolves with its URL (and what it printed) once it listens. */
function startServer(...extra: string[]): Promise<{ url: string; child: ChildProcess; out: string }> {
  const child = spawn(process.execPath, [BIN, 'server', '--port', '0', '--data-dir', dataDir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve({ url: match[1]!, child, out });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

/** PIDs of runner processes working for this data directory. */
function runnerPids(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return cmdline.includes('runner.mjs') && cmdline.includes(dataDir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function session(url: string, name: string): Promise<SessionRecord> {
  return (await (await fetch(`${url}/apis/cfs/v3/sessions/${name}`, { headers: bearer({ dataDir }) })).json()) as SessionRecord;
}


afterAll(() => {
  for (const child of servers) child.kill('SIGKILL');
  for (const pid of runnerPids()) process.kill(pid, 'SIGKILL');
  repo.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('a server killed in the middle of a session', () => {
  it('fails the session on restart, kills the orphaned runner and cleans its workspace', async () => {
    // Arrange: a session whose playbook runs long enough to be caught mid-run.
    ensureBuilt();
    const first = await startServer();
    const image = JSON.parse((await cfsBin(cliEnv({ url: first.url, dataDir }), 'images', 'build-sample', '--name', 'slow-base', '--format', 'json')).out) as { id: string };
    const commit = repo.commit('main', 'slow.yml', '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - command: sleep 120\n');
    await fetch(`${first.url}/apis/cfs/v3/configurations/slow`, {
      method: 'PUT',
      headers: { ...bearer({ dataDir }), 'Content-Type': 'application/json' },
      body: JSON.stringify({ layers: [{ name: 'slow', clone_url: repo.url, commit, playbook: 'slow.yml' }] }),
    });
    await fetch(`${first.url}/apis/cfs/v3/sessions`, {
      method: 'POST',
      headers: { ...bearer({ dataDir }), 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'interrupted', configuration_name: 'slow', target: { definition: 'image', groups: [{ name: 'Compute', members: [image.id] }] } }),
    });
    await waitFor(async () => ((await session(first.url, 'interrupted')).status.steps?.some((s) => s.name === 'ansible') ? true : undefined), 60_000, 'the ansible step');
    const orphans = await waitFor(async () => (runnerPids().length > 0 ? runnerPids() : undefined), 30_000, 'a runner process');
    await new Promise((r) => setTimeout(r, 2_000));
    // Act: the server dies without any chance to clean up, then comes back.
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    expect(runnerPids()).toEqual(orphans);
    const second = await startServer();
    // Assert
    const failed = await session(second.url, 'interrupted');
    expect(failed.status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
    expect(failed.status.failure?.reason).toBe('interrupted by a server restart');
    await waitFor(async () => (runnerPids().length === 0 ? true : undefined), 10_000, 'the orphaned runner to be gone');
    expect(existsSync(join(dataDir, 'work', 'workspaces', 'interrupted'))).toBe(false);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(dataDir);
    const images = (await (await fetch(`${second.url}/apis/ims/v3/images`, { headers: bearer({ dataDir }) })).json()) as { name: string }[];
    expect(images.map((i) => i.name)).toEqual(['slow-base']);
  });
});

describe('a server given a short runner budget', () => {
  it('fails a session whose playbook outlasts it, naming the budget, with its runner gone and nothing registered', async () => {
    // Arrange: the data directory of the case above, its server stopped; the slow configuration is still there.
    for (const child of servers) child.kill('SIGKILL');
    await waitFor(async () => (servers.every((c) => c.exitCode !== null || c.signalCode !== null) ? true : undefined), 10_000, 'the earlier servers to exit');
    const server = await startServer('--runner-timeout', '15', '--max-concurrent-runs', '1');
    const source = ((await (await fetch(`${server.url}/apis/ims/v3/images`, { headers: bearer({ dataDir }) })).json()) as { id: string; name: string }[]).find((i) => i.name === 'slow-base')!;
    // Act
    await fetch(`${server.url}/apis/cfs/v3/sessions`, {
      method: 'POST',
      headers: { ...bearer({ dataDir }), 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'over-budget', configuration_name: 'slow', target: { definition: 'image', groups: [{ name: 'Compute', members: [source.id] }] } }),
    });
    const ended = await waitFor(async () => {
      const s = await session(server.url, 'over-budget');
      return s.status.session.status === 'complete' ? s : undefined;
    }, 90_000, 'the session to end');
    // Assert
    expect(server.out).toContain('up to 1 runner(s) at once, 15s each');
    expect(ended.status.session.succeeded).toBe('false');
    expect(ended.status.failure).toMatchObject({ step: 'ansible', layer: 'slow' });
    expect(ended.status.failure?.reason).toContain("the runner's time budget of 15s ran out during layer 0 'slow'");
    expect(runnerPids()).toEqual([]);
    expect(existsSync(join(dataDir, 'work', 'workspaces', 'over-budget'))).toBe(false);
    const images = (await (await fetch(`${server.url}/apis/ims/v3/images`, { headers: bearer({ dataDir }) })).json()) as { name: string }[];
    expect(images.map((i) => i.name)).toEqual(['slow-base']);
  });
});
