import { execFile } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { RunnerFailure } from './failures.ts';
import { memoryRootsUnder, mountsUnder, overlayRootsUnder } from './mounts.ts';
import { belongsToWorkspace, isRunning, processStartTime, signalGroup, type RecordedProcess } from './process-groups.ts';

const execFileAsync = promisify(execFile);

/** Marks a directory as a runner workspace: the only kind the runner (or an orphan sweep) ever removes. */
export const WORKSPACE_MARKER = '.cfs-runner-workspace';

/**
 * Where the runner's pid and its children's process groups are recorded (rewritten whenever one
 * starts or ends): beside the workspace, never in it, because a layer can write anything in its
 * workspace and the record decides what an orphan sweep kills. A hidden sibling
 * (`.<name>.processes.json`, mode 0600) in the parent, which only the engine writes; session
 * names never start with a dot, so it cannot be another session's workspace.
 */
export function processFileOf(root: string): string {
  const absolute = resolve(root);
  return join(dirname(absolute), `.${basename(absolute)}.processes.json`);
}

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

/**
 * Rewrites the process file (beside the workspace: `processFileOf`) atomically, so a crash
 * mid-write cannot lose the record. Nothing is recorded for a workspace already removed (a
 * child's exit noticed after the clean-up must not leave a record behind).
 */
export async function recordProcesses(root: string, runner: RecordedProcess, groups: RecordedProcess[]): Promise<void> {
  if (!(await exists(root))) return;
  const file = processFileOf(root);
  const body: ProcessFile = { runner, groups };
  await rm(`${file}.new`, { force: true });
  await writeFile(`${file}.new`, JSON.stringify(body), { mode: 0o600, flag: 'wx' });
  await rename(`${file}.new`, file);
}

/**
 * Unmounts everything at or below `dir`, deepest first; a busy mount is detached lazily. With
 * `keepMemoryRoots`, the tmpfs roots the runner unpacked into stay (their files would go with
 * them), and so do the overlay roots of the layer cache (a root is its overlay).
 */
export async function unmountUnder(dir: string, options: { keepMemoryRoots?: boolean } = {}): Promise<string[]> {
  const keep = options.keepMemoryRoots ? [...(await memoryRootsUnder(dir)), ...(await overlayRootsUnder(dir))] : [];
  const points = (await mountsUnder(dir)).filter((p) => !keep.includes(p));
  for (const point of points) {
    await execFileAsync('umount', [point]).catch(() => execFileAsync('umount', ['--lazy', point]));
  }
  const left = (await mountsUnder(dir)).filter((p) => !keep.includes(p));
  if (left.length > 0) throw new Error(`could not unmount ${left.join(', ')}`);
  return points;
}

/**
 * Removes a workspace and its process record (`removeTree`). Does nothing to a directory that
 * lacks the workspace marker, or to a path that is not a directory of its own (a symlink).
 */
export async function removeWorkspace(root: string): Promise<boolean> {
  const kind = await lstat(root).catch(() => undefined);
  const marked = kind?.isDirectory() === true && (await lstat(join(root, WORKSPACE_MARKER)).then(() => true, () => false));
  if (!marked) return !kind;
  return removeTree(root);
}

/**
 * Removes a directory the runner or the engine made: unmounts first, then deletes without ever
 * crossing into another filesystem or following a symlink (`rm -rf --one-file-system`), so a
 * mount that survived cannot take host files with it. What a layer made immutable or
 * append-only (`chattr +i`, `+a`) is cleared (`chattr -R -i -a`, which skips symlinks and special
 * files instead of following them) and the removal tried again. The process record beside it
 * goes too. True when the directory is gone.
 */
export async function removeTree(root: string): Promise<boolean> {
  const kind = await lstat(root).catch(() => undefined);
  if (kind && !kind.isDirectory()) throw new Error(`${root} is not a directory; refusing to remove it`);
  if (kind) {
    await unmountUnder(root);
    const removed = await execFileAsync('rm', ['-rf', '--one-file-system', '--', root]).then(() => true, () => false);
    if (!removed && (await exists(root))) {
      // chattr exits non-zero for every symlink and special file it skips: only the retry's result counts.
      await execFileAsync('chattr', ['-R', '-f', '-i', '-a', '--', root]).catch(() => undefined);
      await execFileAsync('rm', ['-rf', '--one-file-system', '--', root]).catch((error: Error & { stderr?: string }) => {
        throw new Error(`could not remove ${root}: ${(error.stderr ?? error.message).trim().split('\n').slice(-3).join(' | ')}`);
      });
    }
  }
  if (await exists(root)) return false;
  await rm(processFileOf(root), { force: true });
  return true;
}

/**
 * For the engine, after a crash (of the runner or of the engine itself): kills the processes a
 * run left behind (the runner and every child process group it recorded), then unmounts and
 * removes the workspace. A recorded pid is signalled only when it is still that process (the
 * same start time, so a reused pid is never hit) and it works for this workspace (its command
 * line, working directory or root lies in it: the runner's `--workspace`, a tool's paths), so
 * a forged or copied record never kills a bystander or another session's runner.
 */
export async function killOrphanedRun(root: string): Promise<{ killed: number[]; removed: boolean }> {
  const killed: number[] = [];
  const recorded = await readProcessFile(root);
  const ours = async (entry: RecordedProcess) => (await processStartTime(entry.pid)) === entry.start && (await belongsToWorkspace(entry.pid, root));
  if (recorded) {
    if (recorded.runner.pid !== process.pid && (await ours(recorded.runner))) {
      try {
        process.kill(recorded.runner.pid, 'SIGKILL');
        killed.push(recorded.runner.pid);
      } catch {
        // Gone between the check and the kill.
      }
    }
    for (const group of recorded.groups) {
      if (group.pid !== process.pid && (await ours(group)) && signalGroup(group.pid, 'SIGKILL')) killed.push(group.pid);
    }
    await waitUntilGone([recorded.runner, ...recorded.groups].filter((p) => killed.includes(p.pid)), 5_000);
  }
  const removed = await removeWorkspace(root);
  // A record whose workspace is gone (or never was one) names nothing left to clean.
  if (removed) await rm(processFileOf(root), { force: true });
  return { killed, removed };
}

/** The process record of a workspace, when there is a well-formed one (pids are positive integers). */
async function readProcessFile(root: string): Promise<ProcessFile | undefined> {
  const parsed = await readFile(processFileOf(root), 'utf8')
    .then((text) => JSON.parse(text) as Partial<ProcessFile>)
    .catch(() => undefined);
  const valid = (p: unknown): p is RecordedProcess =>
    typeof p === 'object' && p !== null && Number.isSafeInteger((p as RecordedProcess).pid) && (p as RecordedProcess).pid > 1 && typeof (p as RecordedProcess).start === 'string';
  if (!parsed || !valid(parsed.runner) || !Array.isArray(parsed.groups)) return undefined;
  return { runner: parsed.runner, groups: parsed.groups.filter(valid) };
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
