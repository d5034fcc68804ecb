import { NotFoundError } from '../../core/errors.ts';
import type { SessionRecord } from '../../core/model/session.ts';
import { endHold, isHeld } from '../../core/sessions/debug-hold.ts';
import { DEFAULT_SESSION_TTL_SECONDS } from '../../core/sessions/retention.ts';
import { removeRunnerCopy } from '../../steps/cleanup.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import type { Clock } from '../../ports/clock.ts';
import type { EventPublisher } from '../../ports/event-publisher.ts';
import type { SessionStore } from '../../ports/session-store.ts';

/** setTimeout's longest delay (about 24.8 days); a longer hold re-arms when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface DebugHoldsDeps {
  sessions: Pick<SessionStore, 'get' | 'update'>;
  clock: Clock;
  /** Removes a session's kept workspace (unmounting first). */
  removeWorkspace(session: string): Promise<void>;
  /** Where the run document the hold's commands are built from is kept until the hold ends. */
  artifacts?: ArtifactStore;
  /** Hands background work for a session to its owner, so shutdown can wait for it. */
  track(session: string, work: Promise<void>): void;
  /** The session TTL in force (retention counts from the hold's end); the default when absent. */
  settings?: () => Promise<{ sessionTtlSeconds?: number }>;
  /** Where `Session Completed` is announced when a hold ends (the session completes then). */
  events?: Pick<EventPublisher, 'publish'>;
  log?: (line: string) => void;
}

/**
 * The embedded engine's debug holds: one timer per failed session that keeps its workspace
 * (`status.debug.until`); when it fires, or on release, the workspace is removed, the hold
 * recorded as released and the session completed (`succeeded: false`) and announced. Timers do not survive a restart: `recover` re-arms them from the
 * records (or releases a hold that ended while the server was down).
 */
export class DebugHolds {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly deps: DebugHoldsDeps) {}

  /** Arms (or re-arms) the timer of a held session; an expired hold is released at once. */
  arm(session: SessionRecord): void {
    if (!isHeld(session)) return;
    this.disarm(session.name);
    const delay = Date.parse(session.status.debug!.until) - this.deps.clock.now().getTime();
    if (delay <= 0) {
      this.deps.track(session.name, this.release(session.name));
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(session.name);
      if (delay > MAX_TIMER_MS) this.deps.track(session.name, this.rearm(session.name));
      else this.deps.track(session.name, this.release(session.name));
    }, Math.min(delay, MAX_TIMER_MS));
    // A pending hold never keeps a process alive that is otherwise done.
    timer.unref();
    this.timers.set(session.name, timer);
  }

  /**
   * Ends a hold now: removes the workspace and the run document kept for the hold's commands,
   * then records the release and completes the session (a removal that fails is logged; the
   * sweep and retention retry it).
   */
  async release(name: string): Promise<void> {
    this.disarm(name);
    try {
      await this.deps.removeWorkspace(name);
    } catch (error) {
      this.deps.log?.(`debug hold of ${name}: could not remove the workspace: ${(error as Error).message}`);
    }
    try {
      // The control-plane run document stays (it names the logs); the runner's copy and uploads go.
      if (this.deps.artifacts) await removeRunnerCopy(this.deps.artifacts, name);
    } catch (error) {
      this.deps.log?.(`debug hold of ${name}: could not remove the run document: ${(error as Error).message}`);
    }
    const stamp = this.deps.clock.now().toISOString();
    const ttl = (await this.deps.settings?.().catch(() => undefined))?.sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS;
    let completed: SessionRecord | undefined;
    try {
      await this.deps.sessions.update(name, (s) => {
        const ended = endHold(s, stamp, ttl);
        completed = s.status.session.status !== 'complete' && ended.status.session.status === 'complete' ? ended : undefined;
        return ended;
      });
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      return;
    }
    if (completed) {
      await this.deps.events?.publish({
        source: 'cfs.sessions',
        detailType: 'Session Completed',
        detail: { name, succeeded: completed.status.session.succeeded, artifacts: completed.status.artifacts, failure: completed.status.failure },
      });
    }
  }

  /** Whether a timer is armed for the session. */
  armed(name: string): boolean {
    return this.timers.has(name);
  }

  /** Stops every timer (shutdown): holds stay recorded and are re-armed by the next start. */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private disarm(name: string): void {
    const timer = this.timers.get(name);
    if (timer) clearTimeout(timer);
    this.timers.delete(name);
  }

  private async rearm(name: string): Promise<void> {
    const session = await this.deps.sessions.get(name);
    if (session) this.arm(session);
  }
}
