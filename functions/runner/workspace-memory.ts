import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { MEMORY_ROOT_SOURCE } from './mounts.ts';
import type { IdMapping } from './user-namespace.ts';

const execFileAsync = promisify(execFile);
const MIB = 1 << 20;

/**
 * Memory the runner may hold its unpacked roots in. Unpacking is mostly the filesystem creating
 * files, which tmpfs does two to three times faster than a disk filesystem here; a root is put
 * in RAM only when a budget grants its size, so concurrent runners cannot together take more
 * than the share the operator allows. Granted bytes are held until the workspace is removed.
 */
export interface WorkspaceMemory {
  /** Whether `bytes` more may be held in RAM (false: use the disk). */
  reserve(bytes: number): Promise<boolean>;
  /** Gives back a grant that was not used (the mount failed). */
  release(bytes: number): Promise<void>;
}

/** Room a root gets beyond its unpacked size, for what the layers add: a quarter more, and at least 512 MiB. */
export function memoryWorkspaceBytes(unpackedBytes: number): number {
  return Math.ceil(unpackedBytes + Math.max(unpackedBytes / 4, 512 * MIB));
}

/** A budget held by this process alone: the ECS task's share of its memory (one runner per task). */
export class ProcessMemoryBudget implements WorkspaceMemory {
  private held = 0;
  constructor(private readonly limitBytes: number) {}
  reserve(bytes: number): Promise<boolean> {
    if (this.held + bytes > this.limitBytes) return Promise.resolve(false);
    this.held += bytes;
    return Promise.resolve(true);
  }
  release(bytes: number): Promise<void> {
    this.held = Math.max(0, this.held - bytes);
    return Promise.resolve();
  }
}

/** The message a runner sends its engine over the IPC channel, and the answer it gets. */
export interface MemoryRequest {
  type: 'cfs-workspace-memory';
  id: number;
  action: 'reserve' | 'release';
  bytes: number;
}
export interface MemoryAnswer {
  type: 'cfs-workspace-memory';
  id: number;
  granted: boolean;
}

/** How long a runner waits for its engine to answer before it uses the disk. */
const ANSWER_TIMEOUT_MS = 5_000;

/**
 * The embedded engine's server-wide budget, asked over the runner's IPC channel (the engine
 * started it with one). The channel is unreferenced between questions so it never keeps the
 * runner alive.
 */
export class EngineMemoryBudget implements WorkspaceMemory {
  private next = 1;
  constructor(private readonly channel: NodeJS.Process & { send: NonNullable<NodeJS.Process['send']> }) {
    channel.channel?.unref();
  }

  reserve(bytes: number): Promise<boolean> {
    return this.ask('reserve', bytes);
  }

  async release(bytes: number): Promise<void> {
    await this.ask('release', bytes);
  }

  private ask(action: MemoryRequest['action'], bytes: number): Promise<boolean> {
    const id = this.next++;
    return new Promise<boolean>((resolve) => {
      const done = (granted: boolean) => {
        clearTimeout(timer);
        this.channel.off('message', onMessage);
        this.channel.channel?.unref();
        resolve(granted);
      };
      const onMessage = (message: unknown) => {
        const answer = message as Partial<MemoryAnswer>;
        if (answer?.type === 'cfs-workspace-memory' && answer.id === id) done(answer.granted === true);
      };
      const timer = setTimeout(() => done(false), ANSWER_TIMEOUT_MS);
      this.channel.channel?.ref();
      this.channel.on('message', onMessage);
      const request: MemoryRequest = { type: 'cfs-workspace-memory', id, action, bytes };
      try {
        this.channel.send(request);
      } catch {
        done(false);
      }
    });
  }
}

/** The budget the runner's settings and parent give it: the engine's over IPC, a fixed share in ECS, else none. */
export function workspaceMemoryFor(limitBytes: number | undefined): WorkspaceMemory | undefined {
  if (limitBytes === 0) return undefined;
  if (typeof process.send === 'function') return new EngineMemoryBudget(process as NodeJS.Process & { send: NonNullable<NodeJS.Process['send']> });
  return limitBytes === undefined ? undefined : new ProcessMemoryBudget(limitBytes);
}

/**
 * Mounts a tmpfs of `bytes` at `dir` (created if missing), owned by the user namespace's root when
 * there is one, so the unpack writes into RAM. Resolves with why it could not (no privilege to
 * mount, as in a Fargate task), or undefined when mounted. The workspace's removal unmounts it.
 */
export async function mountMemoryRoot(dir: string, bytes: number, mapping: IdMapping | undefined): Promise<string | undefined> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const owner = mapping ? `,uid=${mapping.uid},gid=${mapping.gid}` : '';
  const size = Math.ceil(bytes / MIB);
  try {
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', `size=${size}m,mode=0700${owner}`, MEMORY_ROOT_SOURCE, dir]);
    return undefined;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    return stderr || (error as Error).message;
  }
}
