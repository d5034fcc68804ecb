import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFile, readlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isWithin } from './mounts.ts';

/** A child's end: exit code, or the signal that ended it. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A process the runner started, identified beyond its pid (pids are reused). */
export interface RecordedProcess {
  pid: number;
  /** `/proc/<pid>/stat` field 22: the start time in clock ticks since boot. */
  start: string;
}

/** The start time of a process (a zombie included), or undefined when it is gone. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  return (await readProcessStat(pid))?.start;
}

/** True while the recorded process still runs (same pid and start time, not a zombie). */
export async function isRunning(process: RecordedProcess): Promise<boolean> {
  const stat = await readProcessStat(process.pid);
  return stat !== undefined && stat.start === process.start && stat.state !== 'Z';
}

/**
 * Whether a live process works for the workspace at `root`: an argument of its command line is
 * the workspace or a path in it (the runner's `--workspace`, unsquashfs's target, the sandbox's
 * binds, git's clone directory), its working directory or its root directory is in it, or its
 * environment names it as `RUNNER_WORKSPACE` (the runner in ECS). The orphan sweep checks this
 * (with the start time) before it signals a recorded pid, so a record naming a bystander, or
 * copied from another session, kills nothing.
 */
export async function belongsToWorkspace(pid: number, root: string): Promise<boolean> {
  const workspace = resolve(root);
  const within = (path: string | undefined) => path !== undefined && path.startsWith('/') && isWithin(resolve(path), workspace);
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (cmdline.split('\0').some((arg) => within(arg) || within(arg.slice(arg.indexOf('=') + 1)))) return true;
  for (const link of ['cwd', 'root']) {
    const target = await readlink(`/proc/${pid}/${link}`).catch(() => undefined);
    if (within(target)) return true;
  }
  const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
  return environ.split('\0').some((entry) => entry.startsWith('RUNNER_WORKSPACE=') && within(entry.slice('RUNNER_WORKSPACE='.length)));
}

async function readProcessStat(pid: number): Promise<{ state: string; start: string } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; the fields after the last ')' do not.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', start: fields[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** A failed tool run: the command, its exit and the tail of its stderr. */
export class ToolError extends Error {
  override readonly name = 'ToolError' as const;
  constructor(
    readonly command: string,
    readonly exit: ChildExit,
    readonly stderr: string,
  ) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with ${exit.code}`;
    const tail = stderr.trim().split('\n').slice(-3).join(' | ');
    super(`${command} ${how}${tail ? `: ${tail}` : ''}`);
  }
}

/**
 * Every child the runner starts runs in a process group of its own, so a SIGTERM (or an orphan
 * sweep after a crash) reaches the whole tree: ansible-playbook's workers, the chroot commands,
 * unsquashfs's threads. `onChange` sees the live groups each time one starts or ends, so the
 * workspace's pid file always names what to kill.
 */
export class ProcessGroups {
  private readonly live = new Map<number, { child: ChildProcess; exited: Promise<ChildExit>; record: RecordedProcess }>();
  private terminating = false;
  private recording: Promise<void> = Promise.resolve();

  constructor(private readonly onChange: (groups: RecordedProcess[]) => Promise<void> = async () => {}) {}

  /** True once terminateAll began: callers stop starting work. */
  get terminated(): boolean {
    return this.terminating;
  }

  /**
   * Starts a command in a new process group; `exited` resolves when it ends (never rejects on a
   * non-zero exit). Synchronous on purpose: a child's output is dropped unless it is read from
   * the moment it starts, so the caller attaches its readers before anything else runs.
   */
  start(
    command: string,
    args: string[],
    options: { cwd?: string; env?: NodeJS.ProcessEnv; stdio?: StdioOptions } = {},
  ): { child: ChildProcess; exited: Promise<ChildExit> } {
    if (this.terminating) throw new Error(`not starting ${command}: the run is being terminated`);
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'], detached: true });
    const exited = new Promise<ChildExit>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const pid = child.pid;
    if (pid === undefined) return { child, exited };
    const record: RecordedProcess = { pid, start: '' };
    this.live.set(pid, { child, exited, record });
    this.record(async () => {
      record.start = (await processStartTime(pid)) ?? '';
    });
    const settled = exited.finally(() => {
      this.live.delete(pid);
      return this.record(async () => {});
    });
    return { child, exited: settled };
  }

  /** Resolves once every change so far is in the process file. */
  async recorded(): Promise<void> {
    await this.recording;
  }

  private record(before: () => Promise<void>): Promise<void> {
    this.recording = this.recording
      .then(before)
      .then(() => this.onChange(this.records()))
      .catch(() => {});
    return this.recording;
  }

  /**
   * Runs a command to completion and returns its stdout; a non-zero exit throws a ToolError
   * with the tail of stderr. Output kept in memory is capped (these are short tool runs).
   */
  async run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
    const { child, exited } = this.start(command, args, options);
    const stdout = collect(child.stdout, 64 << 20);
    const stderr = collect(child.stderr, 1 << 20);
    const exit = await exited;
    if (exit.code !== 0) throw new ToolError(command, exit, await stderr);
    return stdout;
  }

  /** Sends SIGTERM to every live group, waits up to `graceMs`, then SIGKILLs whatever is left. */
  async terminateAll(graceMs = 10_000): Promise<void> {
    this.terminating = true;
    const entries = [...this.live.values()];
    for (const entry of entries) signalGroup(entry.record.pid, 'SIGTERM');
    const all = Promise.all(entries.map((e) => e.exited.catch(() => undefined)));
    const timedOut = await Promise.race([all.then(() => false), delay(graceMs).then(() => true)]);
    if (timedOut) {
      for (const entry of entries) signalGroup(entry.record.pid, 'SIGKILL');
      await all;
    }
    // A group outlives its leader when a member ignores SIGTERM; sweep each group once more.
    for (const entry of entries) signalGroup(entry.record.pid, 'SIGKILL');
  }

  private records(): RecordedProcess[] {
    return [...this.live.values()].map((e) => e.record);
  }
}

/** Signals a whole process group; a group that is already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function collect(stream: NodeJS.ReadableStream | null, limit: number): Promise<string> {
  if (!stream) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    if (size < limit) chunks.push(buffer);
    size += buffer.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}
