import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MemoryAnswer, MemoryRequest } from '../../runner/workspace-memory.ts';
import { packageRoot } from './package-root.ts';
import type { Writable } from 'node:stream';
import type { SourceSecret } from '../../core/sources/source-record.ts';

/** The runner's descriptor for its sources' logins (3 is the IPC channel's when there is one). */
export const SOURCE_SECRETS_FD = 4;

/** A runner started as a child process: the embedded stand-in for the ECS task. */
export interface RunnerProcess {
  /** Resolves with the exit code (or 128 + signal number when killed). */
  exited: Promise<number>;
  /** Asks the runner to stop (SIGTERM: it stops Ansible, unmounts, cleans and records the outcome). */
  terminate(): void;
  /**
   * Kills the runner's whole process group (SIGKILL), as ECS does to a task that outlived its
   * stop timeout: for a runner that did not stop when asked. The process groups the runner
   * started for its own children are not in it (the orphan sweep finds those by its record).
   */
  kill(): void;
  pid: number | undefined;
}

const SIGNAL_CODES: Record<string, number> = { SIGTERM: 143, SIGKILL: 137, SIGINT: 130 };

/**
 * Starts `dist/runner.mjs` for a run document in the artifact store, in a process group of
 * its own (so it can be killed whole without touching the server). Its own stdout and stderr
 * (not the Ansible logs, which the runner keeps per layer in the store) go to
 * `<logDir>/<session>.runner.log`.
 */
export function startRunnerProcess(options: {
  session: string;
  documentKey: string;
  /** The filesystem store's directory (`--store-dir`)... */
  storeDir?: string;
  /** ...or the environment naming an S3 store (ARTIFACT_BUCKET, ARTIFACT_KEY_PREFIX, ARTIFACT_S3_ENDPOINT, AWS_REGION); credentials come with the inherited environment. */
  storeEnvironment?: Record<string, string>;
  workspace: string;
  logDir: string;
  /** The layers' network (the operator's `cfs server --network`); the runner's default (egress) when unset. */
  network?: 'egress' | 'none';
  /** The program to run with the same arguments (default `dist/runner.mjs`): tests give a stand-in that misbehaves. */
  script?: string;
  /** Answers the runner's requests for RAM to unpack roots into (over an IPC channel); none: the runner unpacks on disk. */
  memory?: { reserve(bytes: number): boolean; release(bytes: number): void };
  /**
   * The session's sources' logins by secret name, written once to a pipe the runner reads and
   * closes at start (SOURCE_SECRETS_FD): never in its argv or environment, which its layers' processes could see.
   */
  sourceSecrets?: Record<string, SourceSecret>;
}): RunnerProcess {
  mkdirSync(options.logDir, { recursive: true });
  const log = createWriteStream(join(options.logDir, `${options.session}.runner.log`), { flags: 'a' });
  const child: ChildProcess = spawn(
    process.execPath,
    [
      options.script ?? join(packageRoot(), 'dist', 'runner.mjs'),
      '--document-key',
      options.documentKey,
      ...(options.storeDir !== undefined ? ['--store-dir', options.storeDir] : []),
      '--workspace',
      options.workspace,
      ...(options.network ? ['--network', options.network] : []),
      ...(options.sourceSecrets ? ['--source-secrets-fd', String(SOURCE_SECRETS_FD)] : []),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe', ...(options.memory ? (['ipc'] as const) : options.sourceSecrets ? (['ignore'] as const) : []), ...(options.sourceSecrets ? (['pipe'] as const) : [])],
      env: { ...process.env, ...options.storeEnvironment, SESSION_NAME: options.session },
      detached: true,
    },
  );
  if (options.sourceSecrets) {
    const pipe = child.stdio[SOURCE_SECRETS_FD] as Writable | null;
    // A runner that dies before reading closes the pipe: its exit code tells what happened.
    pipe?.on('error', () => {});
    pipe?.end(JSON.stringify(options.sourceSecrets));
  }
  if (options.memory) answerMemoryRequests(child, options.memory);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number>((resolve) => {
    child.once('error', (error) => {
      log.end(`runner failed to start: ${error.message}\n`);
      resolve(127);
    });
    child.once('close', (code, signal) => {
      log.end();
      resolve(code ?? SIGNAL_CODES[signal ?? ''] ?? 1);
    });
  });
  const kill = () => {
    // Meant for while `exited` is pending: a member of the group still holds the runner's output, so its id is not free for reuse.
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
  };
  return { exited, pid: child.pid, terminate: () => void child.kill('SIGTERM'), kill };
}

/** Answers a runner's workspace memory requests; anything else on the channel is ignored. */
function answerMemoryRequests(child: ChildProcess, memory: NonNullable<Parameters<typeof startRunnerProcess>[0]['memory']>): void {
  child.on('message', (message: unknown) => {
    const request = message as Partial<MemoryRequest>;
    if (request?.type !== 'cfs-workspace-memory' || !Number.isSafeInteger(request.id) || typeof request.bytes !== 'number') return;
    let granted = true;
    if (request.action === 'reserve') granted = memory.reserve(request.bytes);
    else if (request.action === 'release') memory.release(request.bytes);
    else return;
    const answer: MemoryAnswer = { type: 'cfs-workspace-memory', id: request.id!, granted };
    // A runner that exited mid-request closed the channel: nothing to answer then.
    if (child.connected) child.send(answer, () => {});
  });
}
