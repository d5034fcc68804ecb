import type { SessionRecord } from '../core/model/session.ts';

/** Starts and stops a session's workflow (Step Functions in AWS, the embedded engine locally). */
export interface WorkflowStarter {
  /**
   * The identifier `start` will most likely return for this new session, so the session can be
   * stored with its `status.session.job` in one write. Absent where it cannot be known ahead.
   */
  plannedJob?(session: SessionRecord): string;
  /**
   * Returns the execution's identifier, recorded in `status.session.job`: `plannedJob` when the
   * runtime could use it. Safe to call twice.
   */
  start(sessionName: string, plannedJob?: string): Promise<string>;
  /** Stops a running execution; a no-op when it has ended. */
  stop(sessionName: string, executionId: string): Promise<void>;
  /**
   * Ends a failed session's debug hold (`status.debug`) now: removes the kept workspace and
   * records the release. Absent where a runtime cannot hold workspaces yet.
   */
  releaseHold?(sessionName: string): Promise<void>;
  /**
   * Throws, saying why, when the engine could not take a session now: one cheap call that the
   * engine itself must answer (the health routes ask it). Absent where a runtime has nothing to
   * ask (test fakes): health then reports the engine as not checked.
   */
  checkHealth?(): Promise<void>;
}
