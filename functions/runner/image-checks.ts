import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECK_TIMEOUT_SECONDS, type CheckSpec } from '../core/sessions/validation-spec.ts';
import { signalGroup, type ChildExit, type ProcessGroups } from './process-groups.ts';
import { prepareRootMounts, startSandboxed, undoRootMounts, type StartedProcess } from './sandbox.ts';
import type { IdMapping } from './user-namespace.ts';
import type { WorkspaceLayout } from './workspace.ts';


/** One check's verdict. */
export interface CheckResult {
  name: string;
  command: string;
  passed: boolean;
  /** The command's exit code; null when it was killed (its time limit, or the run was stopped). */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last non-empty line the command printed (stdout or stderr), for the failure reason. */
  lastLine: string;
  durationMs: number;
  /** The host path of its output. */
  logPath: string;
  /** One line for `status.failure.reason` when it did not pass. */
  reason?: string;
}

/** The environment a check gets: fixed, nothing of the runner's. */
const CHECK_ENV: NodeJS.ProcessEnv = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8', TERM: 'dumb' };

/** What running the checks of one root needs. */
export interface ImageChecksOptions {
  checks: CheckSpec[];
  /** The customized image root (a host path under `layout.images`). */
  root: string;
  layout: WorkspaceLayout;
  /** The sandbox's id mapping (namespace mode); undefined in container mode, where the container is the boundary. */
  mapping: IdMapping | undefined;
  groups: ProcessGroups;
  /** Where `<name>.log` goes for each check (a directory only the runner writes, e.g. `layout.logs`). */
  logDir: string;
  /** Each check's own limit (default CHECK_TIMEOUT_SECONDS). */
  timeoutSeconds?: number;
  signal?: AbortSignal;
  /** Called as each check starts and ends (progress and logs). */
  onStart?: (check: CheckSpec) => Promise<void> | void;
  onEnd?: (result: CheckResult) => Promise<void> | void;
}

/**
 * Runs each check's command inside the customized root, after the last layer and before
 * packing, in the same sandbox as the layers (user namespace, bwrap, seccomp; no network):
 * `chroot ROOT /bin/sh -c COMMAND` as the image's root, with a fixed environment. Every check
 * runs (so one report shows every failure) unless the run is stopped; each has a time limit,
 * after which its whole sandbox is killed. A non-zero exit (or a kill) fails it. Output goes to
 * `<logDir>/<name>.log`. The /proc and /dev mount points the sandbox needs are removed again.
 */
export async function runImageChecks(options: ImageChecksOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  await mkdir(options.logDir, { recursive: true });
  // startSandboxed binds an "inventory" directory read-only; checks need none, so an empty one of the workspace's top.
  const emptyDir = join(options.layout.root, 'checks-empty');
  await mkdir(emptyDir, { recursive: true, mode: 0o755 });
  const mounts = options.mapping ? await prepareRootMounts(options.root, false) : undefined;
  try {
    for (const check of options.checks) {
      if (options.signal?.aborted) break;
      await options.onStart?.(check);
      const result = await runCheck(check, options, emptyDir, mounts);
      results.push(result);
      await options.onEnd?.(result);
    }
  } finally {
    if (mounts) await undoRootMounts(mounts);
    await rmdir(emptyDir).catch(() => {});
  }
  return results;
}

async function runCheck(check: CheckSpec, options: ImageChecksOptions, emptyDir: string, mounts: Awaited<ReturnType<typeof prepareRootMounts>> | undefined): Promise<CheckResult> {
  const logPath = join(options.logDir, `${check.name}.log`);
  const log = createWriteStream(logPath, { mode: 0o640 });
  const logClosed = new Promise<void>((resolve) => log.once('close', () => resolve()));
  log.write(`# CFS check '${check.name}': ${check.command}\n`);
  const timeoutSeconds = options.timeoutSeconds ?? CHECK_TIMEOUT_SECONDS;
  let pending = '';
  let lastLine = '';
  const take = (chunk: Buffer) => {
    if (!log.writableEnded) log.write(chunk);
    const lines = (pending + chunk.toString('utf8')).split('\n');
    pending = lines.pop()!.slice(-4096);
    for (const line of lines) if (line.trim()) lastLine = line.trim().slice(0, 500);
  };
  const attach = (child: ChildProcess) => {
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
  };
  const args = [options.root, '/bin/sh', '-c', check.command];
  const started = performance.now();
  let timedOut = false;
  let exit: ChildExit;
  try {
    let sandboxed: StartedProcess;
    if (options.mapping && mounts) {
      sandboxed = await startSandboxed({
        layout: options.layout,
        mapping: options.mapping,
        network: 'none',
        roots: [mounts],
        inventory: join(emptyDir, 'none'),
        cwd: '/',
        command: 'chroot',
        args,
        env: CHECK_ENV,
        groups: options.groups,
        attach,
      });
    } else {
      sandboxed = options.groups.start('chroot', args, { cwd: '/', env: CHECK_ENV });
      attach(sandboxed.child);
    }
    const pid = sandboxed.child.pid;
    const kill = () => {
      if (pid !== undefined) signalGroup(pid, 'SIGKILL');
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutSeconds * 1000);
    options.signal?.addEventListener('abort', kill, { once: true });
    try {
      exit = await sandboxed.exited;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', kill);
    }
  } catch (error) {
    exit = { code: null, signal: null };
    lastLine = (error as Error).message;
  }
  if (pending.trim()) lastLine = pending.trim().slice(0, 500);
  const durationMs = Math.round(performance.now() - started);
  log.end(`# exit ${exit.signal ?? exit.code}${timedOut ? ` (its ${timeoutSeconds}s time limit ran out)` : ''}, ${durationMs} ms\n`);
  await logClosed;
  const passed = exit.code === 0 && !timedOut;
  const result: CheckResult = { name: check.name, command: check.command, passed, exitCode: exit.code, signal: exit.signal, timedOut, lastLine, durationMs, logPath };
  if (!passed) {
    const how = timedOut ? `did not end within ${timeoutSeconds}s` : exit.code !== null ? `exited with ${exit.code}` : exit.signal ? `was killed by ${exit.signal}` : 'could not run';
    result.reason = `check '${check.name}' (${check.command}) ${how}${lastLine ? `: ${lastLine}` : ''}`;
  }
  return result;
}
