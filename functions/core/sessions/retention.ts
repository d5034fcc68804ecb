import type { SessionRecord } from '../model/session.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import type { SessionStore } from '../../ports/session-store.ts';
import { findRunnerLocations, removeRunnerObjects } from '../workflow/run-document-store.ts';
import { sessionKeys } from '../workflow/session-keys.ts';
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

/**
 * Removes everything a session keeps in the store: its runner's prefix (`runner/<token>/`, named
 * by the control-plane run document, so that goes last) and `sessions/<name>/`.
 */
export async function removeSessionObjects(artifacts: Pick<ArtifactStore, 'list' | 'delete' | 'get' | 'head' | 'discardIncomplete'>, name: string): Promise<number> {
  await removeRunnerObjects(artifacts, (await findRunnerLocations(artifacts, name)).prefix);
  const keys = await artifacts.list(sessionKeys.sessionPrefix(name));
  for (const key of keys) await artifacts.delete(key);
  return keys.length;
}

/**
 * Removes the sessions past their retention at `now` (the TTL in force now, as CFS applies it)
 * and their stored objects; returns their names. The store is asked only for sessions that
 * started before the cut-off (a session cannot complete before it starts); each is then checked
 * whole, and re-read just before removal so one that changed meanwhile is left alone.
 */
export async function sweepExpiredSessions(
  ports: { sessions: SessionStore; artifacts: Pick<ArtifactStore, 'list' | 'delete' | 'get' | 'head' | 'discardIncomplete'> },
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
