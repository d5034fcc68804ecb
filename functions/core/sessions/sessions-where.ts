import type { SessionFilter, SessionStore } from '../../ports/session-store.ts';
import type { SessionRecord } from '../model/session.ts';

/**
 * Every session that matches `filter`, a page at a time through the store's index for its
 * status: the few pending or running sessions are found without reading the completed ones.
 */
export async function sessionsWhere(sessions: Pick<SessionStore, 'query'>, filter: SessionFilter, pageSize = 200): Promise<SessionRecord[]> {
  const found: SessionRecord[] = [];
  let after: string | undefined;
  do {
    const page = await sessions.query({ filter, limit: pageSize, after });
    found.push(...page.sessions);
    after = page.next;
  } while (after !== undefined);
  return found;
}

/**
 * The sessions matching any of `filters`, each once: in the order of the filters, by name within
 * each; one that moved from one status to another between the reads is kept as first read.
 */
export async function sessionsWhereAny(sessions: Pick<SessionStore, 'query'>, filters: SessionFilter[], pageSize?: number): Promise<SessionRecord[]> {
  const byName = new Map<string, SessionRecord>();
  for (const filter of filters) for (const session of await sessionsWhere(sessions, filter, pageSize)) if (!byName.has(session.name)) byName.set(session.name, session);
  return [...byName.values()];
}

/** Pending and running sessions: the ones a configuration or image delete must not pull the ground from under. */
export const ACTIVE_SESSIONS: SessionFilter[] = [{ status: 'pending' }, { status: 'running' }];
