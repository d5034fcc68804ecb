import type { SessionStore } from '../ports/session-store.ts';
import { sessionKeys } from '../core/workflow/session-keys.ts';
import type { StepPorts } from './step-ports.ts';

/** Where a runtime keeps per-session scratch space (the embedded engine's runner workspaces). */
export interface WorkspaceCleaner {
  remove(session: string): Promise<void>;
}

/**
 * Cleanup, after success and after failure: removes the run document and any workspace left
 * behind, unless the session holds it for debugging (`status.debug`, `debug_on_failure`): the
 * hold's end removes it then. The runner's outcome and the layer logs stay: they are the
 * session's record.
 */
export async function cleanup(
  ports: Pick<StepPorts, 'artifacts'> & { sessions?: Pick<SessionStore, 'get'>; workspaces?: WorkspaceCleaner },
  input: { session: string },
): Promise<void> {
  await ports.artifacts.delete(sessionKeys.runDocument(input.session));
  if (!ports.workspaces) return;
  const hold = (await ports.sessions?.get(input.session))?.status.debug;
  if (hold && !hold.released_at) return;
  await ports.workspaces.remove(input.session);
}
