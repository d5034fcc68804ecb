import type { SessionRecord } from '../model/session.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import type { SessionStore } from '../../ports/session-store.ts';
import { findRunnerLocations, readRunDocument } from '../workflow/run-document-store.ts';
import { runnerPrefixOf, sessionKeys } from '../workflow/session-keys.ts';
import { rfc3339 } from './rfc3339.ts';

/**
 * Retention (`session_ttl`, as CFS: default 7 days, empty keeps sessions for ever): completed
 * sessions older than the TTL are removed with everything they keep in the store (logs, runner
 * documents). Result images and their lineage are the registry's and stay.
 */

/** CFS's default `session_ttl`. */
export const DEFAULT_SESSION_TTL_SECONDS = 7 * 86_400;

function activeHoldUntil(session: SessionRecord): number | undefined {
  const hold = session.status.debug;
  return hold && !hold.released_at ? Date.parse(hold.until) : undefined;
}

/**
 * The TTL attribute for a session completing at `completion` (epoch seconds), never before a
 * debug hold ends; undefined when sessions are kept for ever.
 */
export function expiresAt(completion: string, ttlSeconds: number, holdUntil?: string): number | undefined {
  if (ttlSeconds <= 0) return undefined;
  const end = Math.max(Date.parse(completion) + ttlSeconds * 1000, holdUntil ? Date.parse(holdUntil) : 0);
  return Math.ceil(end / 1000);
}

/** Whether a session is past its retention at `now`: complete for longer than the TTL and not held for debugging. */
export function isExpired(session: SessionRecord, now: Date, ttlSeconds: number): boolean {
  const { status, completion_time } = session.status.session;
  if (ttlSeconds <= 0 || status !== 'complete' || !completion_time) return false;
  const held = activeHoldUntil(session);
  if (held !== undefined && held > now.getTime()) return false;
  return Date.parse(completion_time) + ttlSeconds * 1000 <= now.getTime();
}

/** What removing a session's objects needs of the store (`deletePrefix` where it has one). */
export type SessionObjectStore = Pick<ArtifactStore, 'list' | 'delete' | 'get' | 'head' | 'discardIncomplete' | 'deletePrefix'>;

/** Removes every object under a directory prefix: in batches where the store can, else one by one; and what interrupted writes left. */
export async function removePrefix(artifacts: SessionObjectStore, prefix: string): Promise<number> {
  if (artifacts.deletePrefix) return artifacts.deletePrefix(prefix);
  const keys = await artifacts.list(prefix);
  for (const key of keys) await artifacts.delete(key);
  await artifacts.discardIncomplete?.(prefix);
  return keys.length;
}

/**
 * Removes everything a session keeps in the store: its runner's prefix (`runner/<token>/`, named
 * by the control-plane run document, so that goes last) and `sessions/<name>/`. Only once
 * nothing of the session writes any more: a write after this would bring its objects back.
 */
export async function removeSessionObjects(artifacts: SessionObjectStore, name: string): Promise<number> {
  const { prefix } = await findRunnerLocations(artifacts, name);
  if (prefix && runnerPrefixOf(prefix) === prefix) await removePrefix(artifacts, prefix);
  return removePrefix(artifacts, sessionKeys.sessionPrefix(name));
}

/**
 * The clean-up of a deleted session's run (execution `job`), called once nothing of that run
 * writes any more (its runner stopped, its steps ended): its objects go. When a newer session of
 * the same name exists already, only what the run document says is this run's goes (the run
 * document names its job); the newer session's are left alone. Returns whether anything was removed.
 */
export async function removeDeletedRunObjects(
  ports: { sessions: Pick<SessionStore, 'get'>; artifacts: SessionObjectStore },
  name: string,
  job: string | undefined,
): Promise<boolean> {
  const current = await ports.sessions.get(name);
  if (current && (job === undefined || current.status.session.job === job)) return false;
  if (current) {
    const document = await readRunDocument(ports.artifacts, name);
    if (!document || document.job !== job) return false;
  }
  await removeSessionObjects(ports.artifacts, name);
  return true;
}

/** How old the newest object under `sessions/<name>/` must be before the sweep removes it for a session that no longer exists. */
export const ORPHAN_GRACE_SECONDS = 3600;

/**
 * Removes `sessions/<name>/` (and the runner prefix its run document names) of every session
 * that has no record any more: what a delete or an expiry left when it was interrupted, or what
 * a late writer brought back. Only when the newest object there is older than `graceSeconds`
 * (a delete's clean-up still at work, or anything written a moment ago, is left alone) and the
 * session is not one the caller says it is working for. Returns the names removed. Needs a
 * store that can say when each object was written (`listModified`).
 */
export async function sweepOrphanedSessionObjects(
  ports: { sessions: Pick<SessionStore, 'get'>; artifacts: SessionObjectStore & Pick<ArtifactStore, 'listModified'> },
  now: Date,
  graceSeconds: number = ORPHAN_GRACE_SECONDS,
  busy: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  if (!ports.artifacts.listModified) return [];
  const newest = new Map<string, number>();
  for (const { key, modified } of await ports.artifacts.listModified('sessions/')) {
    const [, name, ...rest] = key.split('/');
    if (!name || rest.length === 0) continue;
    newest.set(name, Math.max(newest.get(name) ?? 0, modified.getTime()));
  }
  const cutoff = now.getTime() - graceSeconds * 1000;
  const removed: string[] = [];
  for (const [name, written] of [...newest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (written > cutoff || busy.has(name) || (await ports.sessions.get(name))) continue;
    await removeSessionObjects(ports.artifacts, name);
    removed.push(name);
  }
  return removed;
}

/**
 * Removes the sessions past their retention at `now` (the TTL in force now, as CFS applies it)
 * and their stored objects; returns their names. The store is asked only for sessions that
 * started before the cut-off (a session cannot complete before it starts); each is then checked
 * whole, and re-read just before removal so one that changed meanwhile is left alone.
 */
export async function sweepExpiredSessions(
  ports: { sessions: SessionStore; artifacts: SessionObjectStore },
  now: Date,
  ttlSeconds: number,
): Promise<string[]> {
  if (ttlSeconds <= 0) return [];
  const cutoff = rfc3339(new Date(now.getTime() - ttlSeconds * 1000));
  const candidates = await ports.sessions.matchingNames({ status: 'complete', startedBefore: cutoff });
  const removed: string[] = [];
  for (const name of candidates.sort()) {
    const session = await ports.sessions.get(name);
    if (!session || !isExpired(session, now, ttlSeconds)) continue;
    await removeSessionObjects(ports.artifacts, name);
    if (await ports.sessions.delete(name)) removed.push(name);
  }
  return removed;
}
