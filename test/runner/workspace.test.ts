import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isRunning, processStartTime, ProcessGroups } from '../../functions/runner/process-groups.ts';
import { killOrphanedRun, prepareWorkspace, PROCESS_FILE, recordProcesses, removeWorkspace, WORKSPACE_MARKER } from '../../functions/runner/workspace.ts';

describe('workspace', () => {
  let base: string;
  const self = async () => ({ pid: process.pid, start: (await processStartTime(process.pid)) ?? '' });

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'cfs-workspace-'));
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('refuses a non-empty directory that is not a runner workspace, and never removes one', async () => {
    // Arrange
    const foreign = join(base, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'precious'), 'keep me');

    // Act
    const prepare = await prepareWorkspace(foreign, await self()).catch((error: unknown) => error);
    const removed = await removeWorkspace(foreign);

    // Assert
    expect(prepare).toMatchObject({ kind: 'environment', message: expect.stringMatching(/is not a runner workspace/) });
    expect(removed).toBe(false);
    expect(await readFile(join(foreign, 'precious'), 'utf8')).toBe('keep me');
  });

  it('creates the layout with a marker and a process file, and removes all of it', async () => {
    // Arrange
    const root = join(base, 'ws');

    // Act
    const layout = await prepareWorkspace(root, await self());
    const recorded = JSON.parse(await readFile(join(root, PROCESS_FILE), 'utf8'));
    const markerThere = existsSync(join(root, WORKSPACE_MARKER));
    const layoutThere = [layout.downloads, layout.images, layout.repos, layout.results, layout.logs, layout.ansibleHome, layout.ansibleTemp, layout.tmp].every((d) => existsSync(d));
    const removed = await removeWorkspace(root);

    // Assert
    expect(markerThere).toBe(true);
    expect(layoutThere).toBe(true);
    expect(recorded.runner.pid).toBe(process.pid);
    expect(removed).toBe(true);
    expect(existsSync(root)).toBe(false);
  });

  it('kills the recorded process groups of an orphaned run, down to grandchildren, and removes its workspace', async () => {
    // Arrange
    const root = join(base, 'orphan');
    await prepareWorkspace(root, await self());
    const groups = new ProcessGroups((live) => recordProcesses(root, { pid: 999_999_999, start: 'gone' }, live));
    const { child } = groups.start('/bin/sh', ['-c', 'sleep 300 & sleep 301; wait'], { stdio: 'ignore' });
    await groups.recorded();
    const leader = { pid: child.pid!, start: (await processStartTime(child.pid!)) ?? '' };

    // Act
    const swept = await killOrphanedRun(root);

    // Assert
    expect(swept).toEqual({ killed: [leader.pid], removed: true });
    expect(await isRunning(leader)).toBe(false);
    expect(existsSync(root)).toBe(false);
  });

  it('leaves a reused pid alone: a recorded group whose start time differs is not killed', async () => {
    // Arrange
    const root = join(base, 'reused');
    await prepareWorkspace(root, await self());
    const bystander = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    await recordProcesses(root, { pid: 999_999_999, start: 'gone' }, [{ pid: bystander.pid!, start: '1' }]);

    // Act
    const swept = await killOrphanedRun(root);
    const alive = await isRunning({ pid: bystander.pid!, start: (await processStartTime(bystander.pid!)) ?? '' });
    bystander.kill('SIGKILL');

    // Assert
    expect(swept.killed).toEqual([]);
    expect(alive).toBe(true);
  });
});
