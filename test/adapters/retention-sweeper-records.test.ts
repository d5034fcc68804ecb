import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetentionSweeper } from '../../functions/adapters/local/retention-sweeper.ts';
import { isRunning, processStartTime } from '../../functions/runner/process-groups.ts';
import { prepareWorkspace, processFileOf, recordProcesses } from '../../functions/runner/workspace.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';

describe('the retention sweep and process records', () => {
  let ports: FakeStepPorts;
  let workDir: string;
  const started: ChildProcess[] = [];

  beforeEach(() => {
    ports = fakeStepPorts();
    workDir = mkdtempSync(join(tmpdir(), 'cfs-sweep-records-'));
  });
  afterEach(() => {
    for (const child of started.splice(0)) child.kill('SIGKILL');
    ports.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  const sweeper = (busy: string[]) =>
    new RetentionSweeper({ ...ports, settings: ports.settings, workDir, busySessions: () => new Set(busy), log: () => undefined });

  it("removes an orphaned workspace holding a copy of a running session's record without killing that session's runner", async () => {
    // Arrange: session 'busy' runs (its runner works in its workspace); 'orphan' was left by a crash with busy's record copied beside it.
    const workspaces = join(workDir, 'workspaces');
    const busy = join(workspaces, 'busy');
    const orphan = join(workspaces, 'orphan');
    const self = { pid: process.pid, start: (await processStartTime(process.pid)) ?? '' };
    await prepareWorkspace(busy, self);
    await prepareWorkspace(orphan, self);
    const child = spawn('sleep', ['300'], { cwd: busy, detached: true, stdio: 'ignore' });
    started.push(child);
    const runner = { pid: child.pid!, start: (await processStartTime(child.pid!)) ?? '' };
    await recordProcesses(busy, runner, []);
    await copyFile(processFileOf(busy), processFileOf(orphan));

    // Act
    const swept = await sweeper(['busy']).sweep();

    // Assert
    expect(swept.workspaces).toEqual(['orphan']);
    expect(await isRunning(runner)).toBe(true);
    expect(existsSync(busy)).toBe(true);
    expect(existsSync(processFileOf(busy))).toBe(true);
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(processFileOf(orphan))).toBe(false);
  });

  it('sweeps a process record whose workspace is gone, and never takes a record for a workspace', async () => {
    // Arrange
    const workspaces = join(workDir, 'workspaces');
    const gone = join(workspaces, 'gone');
    await prepareWorkspace(gone, { pid: process.pid, start: (await processStartTime(process.pid)) ?? '' });
    rmSync(gone, { recursive: true });

    // Act
    const swept = await sweeper([]).sweep();

    // Assert
    expect(swept.workspaces).toEqual([]);
    expect(existsSync(processFileOf(gone))).toBe(false);
  });
});
