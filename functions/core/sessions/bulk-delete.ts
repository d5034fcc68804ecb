import { NotFoundError } from '../errors.ts';
import type { AppPorts } from '../../ports/index.ts';
import { filterFromParams, sessionMatches } from './filters.ts';
import { parseQueryParams, v2SessionDeleteParamsSchema, v3SessionDeleteParamsSchema } from './query-params.ts';
import { deleteSession } from './session-use-cases.ts';

/** The artifact store, where given, takes each deleted session's documents and logs (see deleteSession). */
export type BulkDeletePorts = Pick<AppPorts, 'sessions' | 'workflow' | 'clock'> & Partial<Pick<AppPorts, 'artifacts'>>;

/** Sessions deleted at once: stopping a running session waits for its clean-up, so a few go in parallel, not thousands. */
const PARALLEL_DELETES = 8;

/**
 * `DELETE /v{2,3}/sessions`: deletes every session matching the filters (no paging). `status`
 * defaults to `complete`; an empty `status` means any status. Each session goes through the
 * single delete (`deleteSession`), so a running one is stopped and cleaned up exactly as when
 * it is deleted by name. A session that no longer matches when its turn comes (it moved on, or
 * someone else deleted it) is left alone. Returns the names deleted, in name order.
 */
export async function deleteSessionsByFilter(ports: BulkDeletePorts, query: Record<string, string[]>, version: 'v2' | 'v3'): Promise<string[]> {
  const params = parseQueryParams(version === 'v3' ? v3SessionDeleteParamsSchema : v2SessionDeleteParamsSchema, query);
  const filter = filterFromParams({ ...params, status: params.status ?? 'complete' }, ports.clock.now());
  const names = (await ports.sessions.matchingNames(filter)).sort();
  const deleted: string[] = [];
  let cursor = 0;
  const worker = async () => {
    while (cursor < names.length) {
      const name = names[cursor++]!;
      const current = await ports.sessions.get(name);
      if (!current || !sessionMatches(current, filter)) continue;
      try {
        await deleteSession(ports, name);
        deleted.push(name);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_DELETES, names.length) }, worker));
  return deleted.sort();
}
