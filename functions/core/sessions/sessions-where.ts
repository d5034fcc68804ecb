import type { SessionFilter, SessionStore } from '../../ports/session-store.ts';
import type { SessionRecord } from '../model/session.ts';

/**
 * Every session that matches `filter`, a page at a time through the store's index for it: the
 * few pending or running sessions are found without reading the many completed ones.
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
