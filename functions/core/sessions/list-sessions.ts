import { ValidationError } from '../errors.ts';
import type { ConfigurationRecord } from '../model/configuration.ts';
import type { SessionRecord } from '../model/session.ts';
import type { AppPorts } from '../../ports/index.ts';
import type { SessionFilter } from '../../ports/session-store.ts';
import { currentOptions } from '../options/options-use-cases.ts';
import { filterFromParams } from './filters.ts';
import { configurationsInUse } from '../configurations/configuration-use.ts';
import {
  parseQueryParams,
  SEARCH_STOPPED_EARLY,
  v2ConfigurationListParamsSchema,
  v2SessionListParamsSchema,
  v3ConfigurationListParamsSchema,
  v3SessionListParamsSchema,
} from './query-params.ts';

/**
 * CFS listings at scale. v3 pages (`limit`, default the `default_page_size` option, and
 * `after_id`, a name; results in name order) and answers `next`: every query parameter of the
 * request with `after_id` moved on, or null on the last page. v2 has no paging: it answers the
 * whole list, or 400 "The response size is too large" when more records match than the page
 * size, as CFS v2 does.
 *
 * A filtered listing finds what matches: it keeps reading store pages (each bounded by the
 * store's own read budget) until it has `limit` matches or reaches the end. A filter no index
 * serves (`name_contains`, `in_use=false`, ...) may have to read far, so one request reads for at
 * most LISTING_TIME_BUDGET_MS (by the clock port) and LISTING_MAX_STORE_PAGES store pages; only
 * when that runs out does it answer a short page, whose `next` carries
 * `search_stopped_early: true` (V3NextData is an open object) beside the `after_id` where the
 * search stopped: following it goes on searching from there.
 */

export type ListingPorts = Pick<AppPorts, 'sessions' | 'configurations' | 'options' | 'clock' | 'automations'>;

/** The v3 `next` object: every parameter of the request, `limit` as a number, `after_id` moved on; `search_stopped_early` when it did. */
export type NextPage = Record<string, string | number | boolean>;

/** How long one listing request keeps searching: well under API Gateway's 29 s, so the answer always arrives. */
export const LISTING_TIME_BUDGET_MS = 10_000;
/** At most this many store pages per request, whatever the clock says (each reads at most the store's per-page budget). */
export const LISTING_MAX_STORE_PAGES = 50;
/** Configurations read per store page when a filter drops some of them. */
const CONFIGURATION_CHUNK = 200;

/** Where a search stands against its budget: started at construction, by the clock port. */
class SearchBudget {
  private readonly started: number;
  private pages = 0;
  constructor(private readonly clock: ListingPorts['clock']) {
    this.started = clock.now().getTime();
  }
  /** Counts a store page read; false once the time or the page cap is spent. */
  spend(): boolean {
    this.pages++;
    return this.pages < LISTING_MAX_STORE_PAGES && this.clock.now().getTime() - this.started < LISTING_TIME_BUDGET_MS;
  }
}

/** A page found: the matches, where to continue (absent at the end), and whether the budget cut the search short. */
interface Found<T> {
  records: T[];
  next?: string;
  stoppedEarly?: boolean;
}

function nextPage(query: Record<string, string[]>, limit: number, found: Found<unknown>): NextPage | null {
  if (found.next === undefined) return null;
  const next: NextPage = Object.fromEntries(Object.entries(query).filter(([name]) => name !== SEARCH_STOPPED_EARLY).map(([name, values]) => [name, values[0]!]));
  return { ...next, limit, after_id: found.next, ...(found.stoppedEarly ? { [SEARCH_STOPPED_EARLY]: true } : {}) };
}

function tooLarge(kind: string, pageSize: number): ValidationError {
  return new ValidationError(
    `The response size is too large: more than ${pageSize} ${kind} match (the default_page_size option); use the v3 API with limit and after_id, or narrow the filters`,
  );
}

function searchTooLong(kind: string): ValidationError {
  return new ValidationError(
    `The search for matching ${kind} stopped early: it read for ${LISTING_TIME_BUDGET_MS / 1000} s (or ${LISTING_MAX_STORE_PAGES} store pages) without reaching the end; use the v3 API, whose pages continue where a search stopped, or narrow the filters`,
  );
}

/** Up to `limit` matching sessions after `after`, store page after store page, within the budget. */
async function findSessions(ports: ListingPorts, filter: SessionFilter, limit: number, after: string | undefined): Promise<Found<SessionRecord>> {
  const budget = new SearchBudget(ports.clock);
  const records: SessionRecord[] = [];
  let cursor = after;
  for (;;) {
    const page = await ports.sessions.query({ filter, limit: limit - records.length, after: cursor });
    records.push(...page.sessions);
    if (page.next === undefined) return { records };
    cursor = page.next;
    if (records.length >= limit) return { records, next: cursor };
    if (!budget.spend()) return { records, next: cursor, stoppedEarly: true };
  }
}

/** `GET /v3/sessions`: one page of the sessions that match the filters. */
export async function listSessionPage(
  ports: ListingPorts,
  query: Record<string, string[]>,
): Promise<{ sessions: SessionRecord[]; next: NextPage | null }> {
  const params = parseQueryParams(v3SessionListParamsSchema, query);
  const filter = filterFromParams(params, ports.clock.now());
  const limit = params.limit ?? (await currentOptions(ports)).default_page_size;
  const found = await findSessions(ports, filter, limit, params.after_id);
  return { sessions: found.records, next: nextPage(query, limit, found) };
}

/** `GET /v2/sessions`: the whole filtered list, or a 400 when it is larger than the page size (or the search cannot finish in time). */
export async function listSessionsV2(ports: ListingPorts, query: Record<string, string[]>): Promise<SessionRecord[]> {
  const params = parseQueryParams(v2SessionListParamsSchema, query);
  const filter = filterFromParams(params, ports.clock.now());
  const pageSize = (await currentOptions(ports)).default_page_size;
  const found = await findSessions(ports, filter, pageSize + 1, undefined);
  if (found.records.length > pageSize) throw tooLarge('sessions', pageSize);
  if (found.stoppedEarly) throw searchTooLong('sessions');
  return found.records;
}

/**
 * Up to `limit` configurations after `after` that meet `inUse`. In use: the few names in use,
 * read one by one in name order. Not in use: the store's pages in name order, skipping the
 * names in use, within the budget.
 */
async function findConfigurations(ports: ListingPorts, inUse: boolean | undefined, limit: number, after: string | undefined): Promise<Found<ConfigurationRecord>> {
  if (inUse === undefined) {
    const page = await ports.configurations.page(limit, after);
    return { records: page.configurations, ...(page.next !== undefined ? { next: page.next } : {}) };
  }
  const used = await configurationsInUse(ports);
  if (inUse) {
    const names = [...used.keys()].filter((name) => after === undefined || name > after).sort();
    const records: ConfigurationRecord[] = [];
    let read = 0;
    while (read < names.length && records.length < limit) {
      const batch = names.slice(read, read + limit - records.length);
      read += batch.length;
      // A name in use whose configuration is gone (deleted behind a session's back) is skipped.
      for (const record of await Promise.all(batch.map((name) => ports.configurations.get(name)))) if (record) records.push(record);
    }
    return { records, ...(read < names.length ? { next: records.at(-1)!.name } : {}) };
  }
  const budget = new SearchBudget(ports.clock);
  const records: ConfigurationRecord[] = [];
  let cursor = after;
  for (;;) {
    const page = await ports.configurations.page(Math.max(CONFIGURATION_CHUNK, limit), cursor);
    for (const record of page.configurations) {
      if (used.has(record.name)) continue;
      records.push(record);
      // A full page: more may follow unless this was the last record of the last store page.
      if (records.length === limit) return { records, ...(record !== page.configurations.at(-1) || page.next !== undefined ? { next: record.name } : {}) };
    }
    if (page.next === undefined) return { records };
    cursor = page.next;
    if (!budget.spend()) return { records, next: cursor, stoppedEarly: true };
  }
}

/** `GET /v3/configurations`: one page in name order, of those in use or not with `in_use`. */
export async function listConfigurationPage(
  ports: ListingPorts,
  query: Record<string, string[]>,
): Promise<{ configurations: ConfigurationRecord[]; next: NextPage | null }> {
  const params = parseQueryParams(v3ConfigurationListParamsSchema, query);
  const limit = params.limit ?? (await currentOptions(ports)).default_page_size;
  const found = await findConfigurations(ports, params.in_use, limit, params.after_id);
  return { configurations: found.records, next: nextPage(query, limit, found) };
}

/** `GET /v2/configurations`: every configuration (in use or not with `in_use`), or a 400 when there are more than the page size. */
export async function listConfigurationsV2(ports: ListingPorts, query: Record<string, string[]>): Promise<ConfigurationRecord[]> {
  const params = parseQueryParams(v2ConfigurationListParamsSchema, query);
  const pageSize = (await currentOptions(ports)).default_page_size;
  const found = await findConfigurations(ports, params.in_use, pageSize, undefined);
  if (found.stoppedEarly) throw searchTooLong('configurations');
  if (found.next !== undefined) throw tooLarge('configurations', pageSize);
  return found.records;
}
