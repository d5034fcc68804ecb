import { InvalidStateError, NotFoundError } from '../errors.ts';
import type { SessionRecord } from '../model/session.ts';
import type { AppPorts } from '../../ports/index.ts';
import type { HeldRun } from '../../runner/debug-hold.ts';
import { runDocumentSchema } from '../workflow/run-document.ts';
import { sessionKeys } from '../workflow/session-keys.ts';
import { expiresAt } from './retention.ts';
import { advanceSession } from './status.ts';

/**
 * Debug on failure (`debug_on_failure`, as CFS v3): a failed session keeps its staged roots,
 * inventory and clones for `debug_wait_time`, recorded in `status.debug`; the hold ends by
 * itself, on release, or when the session is deleted. As in CFS (whose job waits out the hold
 * before it ends), the session stays `running` with `succeeded: none` while the hold lasts, its
 * failure already in `status.failure`; it completes (`succeeded: false`, completion time, and
 * retention counted from then) when the hold ends.
 */

/** Whether the session holds its workspace now. */
export function isHeld(session: SessionRecord): boolean {
  const hold = session.status.debug;
  return hold !== undefined && !hold.released_at;
}

/** Whether the session's workflow has ended: it completed, or it failed and holds (or held) its workspace for debugging. */
export function workflowEnded(session: Pick<SessionRecord, 'status'>): boolean {
  return session.status.session.status === 'complete' || session.status.debug !== undefined;
}

/**
 * The record once its hold ended at `stamp`: the hold marked released and the session completed
 * as failed (`complete`, `succeeded: false`, completion time `stamp`, the TTL attribute counted
 * from it; `ttlSeconds` 0 keeps it for ever). Unchanged when it holds nothing and is complete.
 */
export function endHold(session: SessionRecord, stamp: string, ttlSeconds: number): SessionRecord {
  const released = markHoldReleased(session, stamp);
  if (released.status.debug === undefined || released.status.session.status === 'complete') return released;
  const completed = advanceSession(released, { status: 'complete', succeeded: 'false', completion_time: stamp });
  const expires = expiresAt(completed.status.session.completion_time ?? stamp, ttlSeconds);
  return expires === undefined ? completed : { ...completed, expires_at: expires };
}

/** The record with its hold marked released at `stamp` (unchanged when nothing is held). */
export function markHoldReleased(session: SessionRecord, stamp: string): SessionRecord {
  const hold = session.status.debug;
  if (!hold || hold.released_at) return session;
  return { ...session, status: { ...session.status, debug: { ...hold, released_at: stamp } } };
}

/**
 * `POST /v3/sessions/{name}/release`: ends the hold now (the workspace is removed) and returns
 * the session. 409 when the session holds nothing, or when this deployment cannot hold.
 */
export async function releaseDebugHold(ports: Pick<AppPorts, 'sessions' | 'workflow'>, name: string): Promise<SessionRecord> {
  const session = await ports.sessions.get(name);
  if (!session) throw new NotFoundError('session', name);
  if (!isHeld(session)) {
    const why = session.status.debug?.released_at ? `its debug hold ended at ${session.status.debug.released_at}` : 'it holds no workspace for debugging';
    throw new InvalidStateError(`session '${name}' cannot be released: ${why}`);
  }
  if (!ports.workflow.releaseHold) throw new InvalidStateError('this deployment cannot release debug holds');
  await ports.workflow.releaseHold(name);
  const released = await ports.sessions.get(name);
  if (!released) throw new NotFoundError('session', name);
  return released;
}

/**
 * What `cfs sessions debug` builds a held session's enter and rerun commands from, when they
 * are used: the held workspace's path and the session's run document, which the store keeps
 * while the hold lasts and no layer can write (clone URLs left out). 409 when nothing is held.
 */
export async function heldRun(ports: Pick<AppPorts, 'sessions' | 'artifacts'>, name: string): Promise<HeldRun> {
  const session = await ports.sessions.get(name);
  if (!session) throw new NotFoundError('session', name);
  const hold = session.status.debug;
  if (!hold || hold.released_at) {
    const why = hold?.released_at ? `its debug hold ended at ${hold.released_at}` : 'it holds no workspace for debugging';
    throw new InvalidStateError(`session '${name}' cannot be debugged: ${why}`);
  }
  const key = sessionKeys.runDocument(name);
  if (!(await ports.artifacts.head(key))) throw new InvalidStateError(`session '${name}' cannot be debugged: its run document is gone`);
  const chunks: Buffer[] = [];
  for await (const chunk of await ports.artifacts.get(key)) chunks.push(Buffer.from(chunk as Buffer));
  const parsed = runDocumentSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
  if (!parsed.success) throw new InvalidStateError(`session '${name}' cannot be debugged: its run document does not parse`);
  const document = parsed.data;
  return {
    session: name,
    workspace: hold.workspace,
    images: document.images.map((i) => ({ image_id: i.image_id })),
    layers: document.layers.map((l) => ({ index: l.index, name: l.name, playbook: l.playbook })),
    ansible: document.ansible,
    inventory: document.inventory,
  };
}
