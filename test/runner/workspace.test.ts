import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isRunning, processStartTime, ProcessGroups } from '../../functions/runner/process-groups.ts';
import { killOrphanedRun, prepareWorkspace, processFileOf, recordProcesses, removeWorkspace, WORKSPACE_MARKER } from '../../functions/runner/workspace.ts';

/** The inode flags lsattr shows for a path (`i` immutable, `a` append-only), without following a symlink. */
const flags = (path: string) => execFileSync('lsattr', ['-d', path], { encoding: 'utf8' }).split(' ')[0]!;

/** Whether the filesystem under the temp dir keeps the immutable attribute (ext4 and xfs do; tmpfs before 6.0 and overlayfs may not). */
function immutableSupported(dir: string): boolean {
  const probe = join(dir, 'chattr-probe');
  try {
    execFileSync('touch', [probe]);
    execFileSync('chattr', ['+i', probe], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', probe]);
    return true;
  } catch {
    return false;
  } finally {
    execFileSync('rm', ['-f', probe]);
  }
}

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
    const recorded = JSON.parse(await readFile(processFileOf(root), 'utf8'));
    const recordMode = (await stat(processFileOf(root))).mode & 0o777;
    const markerThere = existsSync(join(root, WORKSPACE_MARKER));
    const layoutThere = [layout.downloads, layout.images, layout.repos, layout.results, layout.logs, layout.ansibleHome, layout.ansibleTemp, layout.tmp].every((d) => existsSync(d));
    const removed = await removeWorkspace(root);

    // Assert
    expect(markerThere).toBe(true);
    expect(layoutThere).toBe(true);
    expect(recorded.runner.pid).toBe(process.pid);
    expect(processFileOf(root)).toBe(join(base, '.ws.processes.json'));
    expect(recordMode).toBe(0o600);
    expect(removed).toBe(true);
    expect(existsSync(root)).toBe(false);
    expect(existsSync(processFileOf(root))).toBe(false);
  });

  it('kills the recorded process groups of an orphaned run, down to grandchildren, and removes its workspace', async () => {
    // Arrange
    const root = join(base, 'orphan');
    await prepareWorkspace(root, await self());
    const groups = new ProcessGroups((live) => recordProcesses(root, { pid: 999_999_999, start: 'gone' }, live));
    const { child } = groups.start('/bin/sh', ['-c', 'sleep 300 & sleep 301; wait'], { stdio: 'ignore', cwd: root });
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

  describe('a record that lies', () => {
    const started: ChildProcess[] = [];
    afterEach(() => {
      for (const child of started.splice(0)) child.kill('SIGKILL');
    });
    /** A live process started by the test, as a record would name it (its true start time). */
    async function live(cwd?: string): Promise<{ pid: number; start: string }> {
      const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', ...(cwd ? { cwd } : {}) });
      started.push(child);
      return { pid: child.pid!, start: (await processStartTime(child.pid!)) ?? '' };
    }

    it('does not kill a live process it names with its true start time when that process does not work for the workspace', async () => {
      // Arrange
      const root = join(base, 'forged');
      await prepareWorkspace(root, await self());
      const bystander = await live();
      await recordProcesses(root, bystander, [bystander]);

      // Act
      const swept = await killOrphanedRun(root);

      // Assert
      expect(swept).toEqual({ killed: [], removed: true });
      expect(await isRunning(bystander)).toBe(true);
    });

    it("does not kill another session's runner or tools through a copy of that session's record, and that session's own sweep still does", async () => {
      // Arrange: session B's runner (here a process whose working directory is B's workspace) and a tool group of B.
      const a = join(base, 'a');
      const b = join(base, 'b');
      await prepareWorkspace(a, await self());
      await prepareWorkspace(b, await self());
      const runnerOfB = await live(b);
      const toolOfB = await live(join(b, 'images'));
      await recordProcesses(b, runnerOfB, [toolOfB]);
      await copyFile(processFileOf(b), processFileOf(a));

      // Act
      const sweptA = await killOrphanedRun(a);
      const aliveAfterA = [await isRunning(runnerOfB), await isRunning(toolOfB)];
      const sweptB = await killOrphanedRun(b);

      // Assert
      expect(sweptA).toEqual({ killed: [], removed: true });
      expect(aliveAfterA).toEqual([true, true]);
      expect(sweptB.killed.sort()).toEqual([runnerOfB.pid, toolOfB.pid].sort());
      expect([await isRunning(runnerOfB), await isRunning(toolOfB)]).toEqual([false, false]);
    });

    it('ignores a process file written inside the workspace, where a layer could write it', async () => {
      // Arrange
      const root = join(base, 'inside');
      await prepareWorkspace(root, await self());
      const bystander = await live(root);
      await writeFile(join(root, '.cfs-runner-processes.json'), JSON.stringify({ runner: bystander, groups: [bystander] }));
      await rm(processFileOf(root));

      // Act
      const swept = await killOrphanedRun(root);

      // Assert
      expect(swept).toEqual({ killed: [], removed: true });
      expect(await isRunning(bystander)).toBe(true);
    });
  });

  describe('removing what a layer made immutable', () => {
    it('clears chattr +i and +a inside the workspace and removes it, without following a symlink to an immutable file and directory outside', async (context) => {
      if (!immutableSupported(base)) context.skip('the filesystem under the temp dir does not keep the immutable attribute');
      // Arrange
      const root = join(base, 'locked');
      await prepareWorkspace(root, await self());
      const outside = join(base, 'outside');
      await mkdir(outside);
      await writeFile(join(outside, 'precious'), 'keep me');
      const lockedDir = join(root, 'images', 'img', 'etc');
      await mkdir(lockedDir, { recursive: true });
      await writeFile(join(lockedDir, 'passwd'), 'x');
      await writeFile(join(root, 'logs', 'append-only.log'), 'x');
      await symlink(outside, join(root, 'images', 'img', 'escape'));
      await symlink(join(outside, 'precious'), join(lockedDir, 'precious-link'));
      execFileSync('chattr', ['+i', join(lockedDir, 'passwd')]);
      execFileSync('chattr', ['+i', lockedDir]);
      execFileSync('chattr', ['+a', join(root, 'logs', 'append-only.log')]);
      execFileSync('chattr', ['+a', join(root, 'logs')]);
      execFileSync('chattr', ['+i', join(outside, 'precious'), outside]);

      // Act
      const removed = await removeWorkspace(root);
      const outsideFlags = [flags(outside), flags(join(outside, 'precious'))];
      execFileSync('chattr', ['-i', join(outside, 'precious'), outside]);

      // Assert
      expect(removed).toBe(true);
      expect(existsSync(root)).toBe(false);
      expect(outsideFlags.every((f) => f.includes('i'))).toBe(true);
      expect(await readFile(join(outside, 'precious'), 'utf8')).toBe('keep me');
      expect(existsSync(dirname(root))).toBe(true);
    });
  });
});
