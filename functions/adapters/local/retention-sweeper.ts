import { readdir, rm, rmdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { isHeld } from '../../core/sessions/debug-hold.ts';
import type { LayerCacheSweep } from '../../core/layer-cache/layer-cache.ts';
import { diskShareCapBytes, layerCacheCapBytes, sweepLayerCache } from '../../core/layer-cache/retention.ts';
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
  settings: () => Promise<Pick<WorkflowSettings, 'sessionTtlSeconds' | 'layerCache'>>;
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
  /**
   * Sweeps the layer cache too (orphans, then least recently used entries down to the cap): the
   * setting `layer_cache_max_bytes`, or when it is null 10% of the size of this directory's
   * filesystem (the data directory's).
   */
  layerCacheDiskDir?: string;
}

/** What one sweep removed. */
export interface SweepResult {
  sessions: string[];
  /** Sessions without a record whose documents and logs were left in the store (an interrupted delete, a late writer). */
  orphans: string[];
  workspaces: string[];
  runnerLogs: string[];
  /** What the layer cache's sweep removed (absent when it is not swept here, or its sweep failed: logged). */
  layerCache?: LayerCacheSweep;
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
    const settings = await this.options.settings();
    const ttl = settings.sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS;
    const expired = await sweepExpiredSessions({ sessions, artifacts }, clock.now(), ttl);
    // Sessions the engine still works for (a deleted session's clean-up needs its run document) are left to it.
    const orphans = await sweepOrphanedSessionObjects({ sessions, artifacts }, clock.now(), this.options.orphanGraceSeconds ?? ORPHAN_GRACE_SECONDS, this.options.busySessions());
    if (this.options.storeDir) for (const name of [...expired, ...orphans]) await pruneEmptyDirs(join(this.options.storeDir, 'sessions', name));
    const result: SweepResult = { sessions: expired, orphans, workspaces: await this.sweepWorkspaces(), runnerLogs: await this.sweepRunnerLogs() };
    const layerCache = await this.sweepLayerCache(settings.layerCache?.maxBytes);
    return layerCache ? { ...result, layerCache } : result;
  }

  /** The layer cache's sweep; a failure is logged and leaves the rest of the sweep's result alone. */
  private async sweepLayerCache(setting: number | null | undefined): Promise<LayerCacheSweep | undefined> {
    const { layerCacheDiskDir: dir, clock } = this.options;
    if (!dir) return undefined;
    try {
      const disk = await statfs(dir);
      const swept = await sweepLayerCache(this.options.artifacts, this.options.clock, layerCacheCapBytes(setting, diskShareCapBytes(disk.blocks * disk.bsize)));
      if (this.options.storeDir) await pruneLayerCacheMarkerDirs(this.options.storeDir, clock.now());
      if (swept.evicted.length > 0 || swept.orphans.length > 0) {
        this.log(`layer cache sweep: ${swept.evicted.length} entr${swept.evicted.length === 1 ? 'y' : 'ies'} evicted, ${swept.orphans.length} orphan(s) removed, ${swept.bytes} bytes of change sets kept`);
      }
      return swept;
    } catch (error) {
      this.log(`layer cache sweep failed: ${(error as Error)?.stack ?? String(error)}`);
      return undefined;
    }
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

/** The layer cache's marker areas, one directory per key, image or blob (functions/core/layer-cache/entry.ts). */
const LAYER_CACHE_MARKER_DIRS = ['pins', 'by-source', 'refs'];

/**
 * Removes the empty directories the filesystem store leaves in the layer cache's marker areas
 * once their markers are deleted, when unchanged for an hour (a record may have just made one).
 */
async function pruneLayerCacheMarkerDirs(storeDir: string, now: Date): Promise<void> {
  for (const area of LAYER_CACHE_MARKER_DIRS) {
    const root = join(storeDir, 'layer-cache', area);
    for (const name of await readdir(root).catch(() => [] as string[])) {
      const dir = join(root, name);
      const info = await stat(dir).catch(() => undefined);
      if (info?.isDirectory() && now.getTime() - info.mtimeMs > 3600_000) await rmdir(dir).catch(() => undefined);
    }
  }
}

/** Removes `dir` and the directories under it that hold no file (a file anywhere keeps its directories). */
async function pruneEmptyDirs(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await pruneEmptyDirs(join(dir, entry.name));
  await rmdir(dir).catch(() => undefined);
}
