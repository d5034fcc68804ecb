import { totalmem } from 'node:os';

/** The default share of the machine's memory that runner workspaces may take together: half. */
export const DEFAULT_WORKSPACE_MEMORY_SHARE = 0.5;

/** Half the machine's memory, the default `cfs server --workspace-memory`. */
export function defaultWorkspaceMemoryBytes(): number {
  return Math.floor(totalmem() * DEFAULT_WORKSPACE_MEMORY_SHARE);
}

/**
 * The server-wide budget of RAM that runners may unpack roots into (tmpfs), shared by every
 * runner of the engine: a grant is counted against the session until its workspace is removed
 * (a debug hold keeps its roots, so it keeps its grant), so two concurrent runners can never
 * both take the same memory.
 */
export class WorkspaceMemoryBudget {
  private readonly held = new Map<string, number>();

  constructor(readonly limitBytes: number) {}

  /** Grants `bytes` to `session` when they fit beside every grant held now. */
  reserve(session: string, bytes: number): boolean {
    if (!(Number.isFinite(bytes) && bytes > 0) || this.inUse() + bytes > this.limitBytes) return false;
    this.held.set(session, (this.held.get(session) ?? 0) + bytes);
    return true;
  }

  /** Gives back part of a session's grant (a mount that failed after the grant). */
  release(session: string, bytes: number): void {
    const left = (this.held.get(session) ?? 0) - Math.max(0, bytes);
    if (left > 0) this.held.set(session, left);
    else this.held.delete(session);
  }

  /** Ends a session's grants: its workspace (and every tmpfs in it) is gone. */
  releaseAll(session: string): void {
    this.held.delete(session);
  }

  inUse(): number {
    let total = 0;
    for (const bytes of this.held.values()) total += bytes;
    return total;
  }
}
