import type { SessionStore } from '../ports/session-store.ts';
import { findRunnerLocations, readRunDocument, removeRunnerObjects } from '../core/workflow/run-document-store.ts';
import { sessionKeys } from '../core/workflow/session-keys.ts';
import { redactCloneUrl } from '../core/workflow/redact.ts';
import { removeDeletedRunObjects } from '../core/sessions/retention.ts';
import type { StepPorts } from './step-ports.ts';

/** Where a runtime keeps per-session scratch space (the embedded engine's runner workspaces). */
export interface WorkspaceCleaner {
  remove(session: string): Promise<void>;
}

/**
 * Cleanup, after success and after failure: removes the runner's copy of the run document, what
 * it uploaded and was never promoted, and any workspace left behind, unless the session holds
 * them for debugging (`status.debug`, `debug_on_failure`): the hold's end removes them then. The
 * control-plane run document (it names the runner's prefix), the runner's outcome and the layer
 * logs stay: they are the session's record, removed with it (delete, retention).
 *
 * The clean-up of a deleted session (told its execution `job`, or finding no record) writes
 * nothing: it runs once the run's runner and steps have stopped, so removing the session's
 * documents, logs and runner prefix here is final (a write after it, such as the redacted run
 * document below, would bring `sessions/<name>/` back). A newer session of the same name keeps
 * its own (see removeDeletedRunObjects).
 */
export async function cleanup(
  ports: Pick<StepPorts, 'artifacts'> & { sessions?: Pick<SessionStore, 'get'>; workspaces?: WorkspaceCleaner },
  input: { session: string; job?: string },
): Promise<void> {
  const record = await ports.sessions?.get(input.session);
  const deleted = ports.sessions !== undefined && (!record || (input.job !== undefined && record.status.session.job !== input.job));
  if (deleted) {
    await removeDeletedRunObjects({ sessions: ports.sessions!, artifacts: ports.artifacts }, input.session, input.job);
    await ports.workspaces?.remove(input.session);
    return;
  }
  const hold = record?.status.debug;
  const held = ports.workspaces !== undefined && hold !== undefined && !hold.released_at;
  // A held session's debug commands are built from its run document: the hold's end removes it.
  if (held) return;
  await removeRunnerCopy(ports.artifacts, input.session);
  await ports.workspaces?.remove(input.session);
}

/**
 * Removes the runner's copy of the run document and its unpromoted uploads, and takes the clone
 * URLs' credentials out of the control-plane run document that stays as the session's record
 * (nothing runs from it any more; the logs API needs only its keys). Safe to repeat.
 */
export async function removeRunnerCopy(artifacts: StepPorts['artifacts'], session: string): Promise<void> {
  const { prefix } = await findRunnerLocations(artifacts, session);
  if (!prefix) return;
  await artifacts.delete(`${prefix}run-document.json`);
  await removeRunnerObjects(artifacts, `${prefix}results/`);
  const document = await readRunDocument(artifacts, session);
  if (!document || document.layers.every((layer) => redactCloneUrl(layer.clone_url) === layer.clone_url)) return;
  const redacted = { ...document, layers: document.layers.map((layer) => ({ ...layer, clone_url: redactCloneUrl(layer.clone_url) })) };
  await artifacts.put(sessionKeys.runDocument(session), JSON.stringify(redacted, null, 2), { contentType: 'application/json' });
}
