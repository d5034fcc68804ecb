import { sessionKeys } from './session-keys.ts';
import type { StepPorts } from './step-ports.ts';

/** Where a runtime keeps per-session scratch space (the embedded engine's runner workspaces). */
export interface WorkspaceCleaner {
  remove(session: string): Promise<void>;
}

/**
 * Cleanup, after success and after failure: removes the run document and any workspace left
 * behind. The runner's outcome and the layer logs stay: they are the session's record.
 */
export async function cleanup(
  ports: Pick<StepPorts, 'artifacts'> & { workspaces?: WorkspaceCleaner },
  input: { session: string },
): Promise<void> {
  await ports.artifacts.delete(sessionKeys.runDocument(input.session));
  await ports.workspaces?.remove(input.session);
}
