/** Starts and stops a session's workflow (Step Functions in AWS, the embedded engine locally). */
export interface WorkflowStarter {
  /** Returns the execution's identifier, recorded in `status.session.job`. Safe to call twice. */
  start(sessionName: string): Promise<string>;
  /** Stops a running execution; a no-op when it has ended. */
  stop(sessionName: string, executionId: string): Promise<void>;
  /**
   * Ends a failed session's debug hold (`status.debug`) now: removes the kept workspace and
   * records the release. Absent where a runtime cannot hold workspaces yet.
   */
  releaseHold?(sessionName: string): Promise<void>;
}
