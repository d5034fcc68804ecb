import type { SessionStore } from '../ports/session-store.ts';
import { sessionKeys } from '../core/workflow/session-keys.ts';
import type { StepPorts } from './step-ports.ts';

/** Where a runtime keeps per-session scratch space (the embedded engine's runner workspaces). */
export interface WorkspaceCleaner {
  remove(session: string): Promise<void>;
}

/**
 * Cleanup, after success and after failure: removes the run document and any workspace left
 * behind, unless the session holds them for debugging (`status.debug`, `debug_on_failure`): the
 * hold's end removes both then. The runner's outcome and the layer logs stay: they are the
 * session's record.
 */
export async function cleanup(
  ports: Pick<StepPorts, 'artifacts'> & { sessions?: Pick<SessionStore, 'get'>; workspaces?: WorkspaceCleaner },
  input: { session: string },
): Promise<void> {
  const hold = (await ports.sessions?.get(input.session))?.status.debug;
  const held = ports.workspaces !== undefined && hold !== undefined && !hold.released_at;
  // A held session's debug commands are built from its run document: the hold's end removes it.
  if (held) return;
  await ports.artifacts.delete(sessionKeys.runDocument(input.session));
  await ports.workspaces?.remove(input.session);
}
