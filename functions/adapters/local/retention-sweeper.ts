import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isHeld } from '../../core/sessions/debug-hold.ts';
import { DEFAULT_SESSION_TTL_SECONDS, ORPHAN_GRACE_SECONDS, sweepExpiredSessions, sweepOrphanedSessionObjects } from '../../core/sessions/retention.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import type { Clock } from '../../ports/clock.ts';
import type { SessionStore } from '../../ports/session-store.ts';
import { killOrphanedRun } from '../../runner/workspace.ts';
import type { WorkflowSettings } from '../../steps/step-ports.ts';

/** How often the embedded server sweeps, unless told otherwise. */
export const DEFAULT_SWEEP_INTERVAL_MS = 5 * 60 * 1000;

export interface RetentionSweeperOptions {
  sessions: SessionStore;
  artifacts: ArtifactStore;
  clock: Clock;
  /** The settings in force (the options' `session_ttl` as `sessionTtlSeconds`), read at each sweep. */
  settings: () => Promise<Pick<WorkflowSettings, 'sessionTtlSeconds'>>;
  /** The engine's work directory: `workspaces/<session>` and `runner-logs/<session>.runner.log`. */
  workDir: string;
  /** The filesystem store's directory, whose emptied `sessions/<name>/` directories are pruned too. */
  storeDir?: string;
  /** Sessions the engine is working for right now (their workspaces are never touched). */
  busySessions: () => Set<string>;
  intervalMs?: number;
  /** How old the newest object of a session without a record must be before its objects are swept (default ORPHAN_GRACE_SECONDS). */
  orphanGraceSeconds?: number;
  log?: (line: string) => void;
}

/** What one sweep removed. */
export interface SweepResult {
  sessions: string[];
  /** Sessions without a record whose documents and logs were left in the store (an interrupted delete, a late writer). */
  orphans: string[];
  workspaces: string[];
  runnerLogs: string[];
}

/**
 * The embedded server's retention, at start and every few minutes: removes completed sessions
 * past `session_ttl` with their stored logs and documents (result images stay), the stored
 * documents and logs of sessions that no longer exist (older than a grace period), the runner
 * logs of sessions that no longer exist, and any workspace under `<workDir>/workspaces/` that
 * no live session owns (a crash's leftover, a hold whose release failed): its recorded
 * processes are killed (each only when it is still the recorded process and works for that
 * workspace: `killOrphanedRun`), its mounts undone, what a layer made immutable cleared, and it
 * is removed, with the process record beside it.
 */
export class RetentionSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<SweepResult>;

  constructor(private readonly options: RetentionSweeperOptions) {}

  /** Sweeps now and then every interval. */
  start(): void {
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.options.intervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  /** One sweep (a sweep asked for while one runs joins it). Failures are logged, never thrown. */
  sweep(): Promise<SweepResult> {
    this.running ??= this.sweepOnce()
      .catch((error: unknown) => {
        this.log(`retention sweep failed: ${(error as Error)?.stack ?? String(error)}`);
        return { sessions: [], orphans: [], workspaces: [], runnerLogs: [] };
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** Stops the timer and waits for a sweep in progress. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  private log(line: string): void {
    (this.options.log ?? ((l) => console.error(l)))(line);
  }

  private async sweepOnce(): Promise<SweepResult> {
    const { sessions, artifacts, clock } = this.options;
    const ttl = (await this.options.settings()).sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS;
    const expired = await sweepExpiredSessions({ sessions, artifacts }, clock.now(), ttl);
    // Sessions the engine still works for (a deleted session's clean-up needs its run document) are left to it.
    const orphans = await sweepOrphanedSessionObjects({ sessions, artifacts }, clock.now(), this.options.orphanGraceSeconds ?? ORPHAN_GRACE_SECONDS, this.options.busySessions());
    if (this.options.storeDir) for (const name of [...expired, ...orphans]) await pruneEmptyDirs(join(this.options.storeDir, 'sessions', name));
    return { sessions: expired, orphans, workspaces: await this.sweepWorkspaces(), runnerLogs: await this.sweepRunnerLogs() };
  }

  /** Whether a session still needs its workspace: the engine works for it, it is pending or running, or it is held for debugging. */
  private async owned(name: string): Promise<boolean> {
    if (this.options.busySessions().has(name)) return true;
    const session = await this.options.sessions.get(name);
    if (!session) return false;
    return session.status.session.status !== 'complete' || isHeld(session);
  }

  private async sweepWorkspaces(): Promise<string[]> {
    const root = join(this.options.workDir, 'workspaces');
    const removed: string[] = [];
    const entries = await readdir(root).catch(() => [] as string[]);
    // A run's process record lives beside its workspace (`.<name>.processes.json`), where no layer can write it.
    const records = new Set(entries.map((entry) => /^\.(.+)\.processes\.json$/.exec(entry)?.[1]).filter((name): name is string => name !== undefined));
    const workspaces = entries.filter((entry) => !entry.startsWith('.'));
    // A record left without its workspace (a runner killed between the two removals) is swept like one.
    for (const name of records) if (!workspaces.includes(name)) workspaces.push(name);
    for (const name of workspaces) {
      if (await this.owned(name)) continue;
      // Checked again just before: a session of that name may have started meanwhile.
      if (this.options.busySessions().has(name)) continue;
      const dir = join(root, name);
      try {
        const { removed: gone } = await killOrphanedRun(dir);
        // A directory the runner never marked is removed only when empty: nothing is deleted that a run did not create.
        if (gone || (await rmdir(dir).then(() => true, () => false))) {
          if (entries.includes(name)) removed.push(name);
        }
        else this.log(`retention sweep: left ${dir}: not a runner workspace`);
      } catch (error) {
        this.log(`retention sweep: could not remove ${dir}: ${(error as Error).message}`);
      }
    }
    return removed;
  }

  private async sweepRunnerLogs(): Promise<string[]> {
    const root = join(this.options.workDir, 'runner-logs');
    const removed: string[] = [];
    for (const file of await readdir(root).catch(() => [] as string[])) {
      const name = /^(.+)\.runner\.log$/.exec(file)?.[1];
      if (!name || this.options.busySessions().has(name) || (await this.options.sessions.get(name))) continue;
      await rm(join(root, file), { force: true });
      removed.push(name);
    }
    return removed;
  }
}

/** Removes `dir` and the directories under it that hold no file (a file anywhere keeps its directories). */
async function pruneEmptyDirs(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await pruneEmptyDirs(join(dir, entry.name));
  await rmdir(dir).catch(() => undefined);
}
