import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RunnerFailure } from './failures.ts';
import { mountsUnder } from './mounts.ts';
import { isRunning, processStartTime, signalGroup, type RecordedProcess } from './process-groups.ts';

const execFileAsync = promisify(execFile);

/** Marks a directory as a runner workspace: the only kind the runner (or an orphan sweep) ever removes. */
export const WORKSPACE_MARKER = '.cfs-runner-workspace';
/** The runner's pid and its children's process groups, rewritten whenever one starts or ends. */
export const PROCESS_FILE = '.cfs-runner-processes.json';

/** Where things live inside a workspace. */
export interface WorkspaceLayout {
  root: string;
  /** Downloaded squashfs files (removed once unpacked). */
  downloads: string;
  /** One unpacked image root per source image: `images/<image id>`. */
  images: string;
  /** One shallow clone per layer: `layers/<index>`. */
  repos: string;
  /** Squashed results before upload. */
  results: string;
  /** Layer logs as they are written. */
  logs: string;
  ansibleHome: string;
  ansibleTemp: string;
  tmp: string;
}

/** The layout of the workspace at `root` (pure: creates nothing). */
export function workspaceLayout(root: string): WorkspaceLayout {
  return {
    root,
    downloads: join(root, 'downloads'),
    images: join(root, 'images'),
    repos: join(root, 'layers'),
    results: join(root, 'results'),
    logs: join(root, 'logs'),
    ansibleHome: join(root, 'ansible', 'home'),
    ansibleTemp: join(root, 'ansible', 'tmp'),
    tmp: join(root, 'tmp'),
  };
}

interface ProcessFile {
  runner: RecordedProcess;
  groups: RecordedProcess[];
}

/**
 * Creates the workspace (or takes over one left by a crashed run, killing what it left
 * running) and records the runner's pid. A non-empty directory without the marker is refused:
 * the runner never deletes what it did not create.
 */
export async function prepareWorkspace(root: string, runner: RecordedProcess): Promise<WorkspaceLayout> {
  const entries = await readdir(root).catch(() => undefined);
  if (entries && entries.length > 0) {
    if (!entries.includes(WORKSPACE_MARKER)) {
      throw new RunnerFailure('environment', `workspace ${root} exists and is not a runner workspace (no ${WORKSPACE_MARKER}); refusing to use it`);
    }
    await killOrphanedRun(root);
  }
  const layout = workspaceLayout(root);
  await mkdir(root, { recursive: true, mode: 0o700 });
  await writeFile(join(root, WORKSPACE_MARKER), '');
  await recordProcesses(root, runner, []);
  for (const dir of [layout.downloads, layout.images, layout.repos, layout.results, layout.logs, layout.ansibleHome, layout.ansibleTemp, layout.tmp]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
  return layout;
}

/** Rewrites the process file atomically (a crash mid-write must not lose the record). */
export async function recordProcesses(root: string, runner: RecordedProcess, groups: RecordedProcess[]): Promise<void> {
  const file = join(root, PROCESS_FILE);
  const body: ProcessFile = { runner, groups };
  await writeFile(`${file}.new`, JSON.stringify(body));
  await rename(`${file}.new`, file);
}

/** Unmounts everything at or below `dir`, deepest first; a busy mount is detached lazily. */
export async function unmountUnder(dir: string): Promise<string[]> {
  const points = await mountsUnder(dir);
  for (const point of points) {
    await execFileAsync('umount', [point]).catch(() => execFileAsync('umount', ['--lazy', point]));
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`could not unmount ${left.join(', ')}`);
  return points;
}

/**
 * Removes a workspace: unmounts first, then deletes without ever crossing into another
 * filesystem (`rm --one-file-system`), so a mount that survived cannot take host files with it.
 * Does nothing to a directory that lacks the workspace marker.
 */
export async function removeWorkspace(root: string): Promise<boolean> {
  const marked = await stat(join(root, WORKSPACE_MARKER)).then(
    () => true,
    () => false,
  );
  if (!marked) return !(await exists(root));
  await unmountUnder(root);
  await execFileAsync('rm', ['-rf', '--one-file-system', '--', root]);
  return !(await exists(root));
}

/**
 * For the engine, after a crash (of the runner or of the engine itself): kills the processes a
 * run left behind (the runner and every child process group it recorded, each checked against
 * its start time so a reused pid is never hit), then unmounts and removes the workspace.
 */
export async function killOrphanedRun(root: string): Promise<{ killed: number[]; removed: boolean }> {
  const killed: number[] = [];
  const recorded = await readFile(join(root, PROCESS_FILE), 'utf8')
    .then((text) => JSON.parse(text) as ProcessFile)
    .catch(() => undefined);
  if (recorded) {
    if (recorded.runner.pid !== process.pid && (await processStartTime(recorded.runner.pid)) === recorded.runner.start) {
      try {
        process.kill(recorded.runner.pid, 'SIGKILL');
        killed.push(recorded.runner.pid);
      } catch {
        // Gone between the check and the kill.
      }
    }
    for (const group of recorded.groups) {
      if ((await processStartTime(group.pid)) === group.start && signalGroup(group.pid, 'SIGKILL')) killed.push(group.pid);
    }
    await waitUntilGone([recorded.runner, ...recorded.groups], 5_000);
  }
  const removed = await removeWorkspace(root);
  return { killed, removed };
}

async function waitUntilGone(processes: RecordedProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const alive = await Promise.all(processes.map(isRunning));
    if (!alive.some(Boolean)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
