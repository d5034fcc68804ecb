import { ValidationError } from '../errors.ts';
import type { ConfigurationRecord } from '../model/configuration.ts';
import type { SessionRecord } from '../model/session.ts';
import type { AppPorts } from '../../ports/index.ts';
import type { SessionFilter } from '../../ports/session-store.ts';
import { currentOptions } from '../options/options-use-cases.ts';
import { filterFromParams } from './filters.ts';
import {
  parseQueryParams,
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
 */

export type ListingPorts = Pick<AppPorts, 'sessions' | 'configurations' | 'options' | 'clock'>;

/** The v3 `next` object: every parameter of the request, `limit` as a number, `after_id` moved on. */
export type NextPage = Record<string, string | number>;

function nextPage(query: Record<string, string[]>, limit: number, after: string | undefined): NextPage | null {
  if (after === undefined) return null;
  const next: NextPage = Object.fromEntries(Object.entries(query).map(([name, values]) => [name, values[0]!]));
  return { ...next, limit, after_id: after };
}

function tooLarge(kind: string, pageSize: number): ValidationError {
  return new ValidationError(
    `The response size is too large: more than ${pageSize} ${kind} match (the default_page_size option); use the v3 API with limit and after_id, or narrow the filters`,
  );
}

/** `GET /v3/sessions`: one page of the sessions that match the filters. */
export async function listSessionPage(
  ports: ListingPorts,
  query: Record<string, string[]>,
): Promise<{ sessions: SessionRecord[]; next: NextPage | null }> {
  const params = parseQueryParams(v3SessionListParamsSchema, query);
  const filter = filterFromParams(params, ports.clock.now());
  const limit = params.limit ?? (await currentOptions(ports)).default_page_size;
  const page = await ports.sessions.query({ filter, limit, after: params.after_id });
  return { sessions: page.sessions, next: nextPage(query, limit, page.next) };
}

/** Every matching session (v2), page by page; more than the page size is a 400. */
async function allMatching(ports: ListingPorts, filter: SessionFilter, pageSize: number): Promise<SessionRecord[]> {
  const sessions: SessionRecord[] = [];
  let after: string | undefined;
  do {
    const page = await ports.sessions.query({ filter, limit: pageSize + 1 - sessions.length, after });
    sessions.push(...page.sessions);
    if (sessions.length > pageSize) throw tooLarge('sessions', pageSize);
    after = page.next;
  } while (after !== undefined);
  return sessions;
}

/** `GET /v2/sessions`: the whole filtered list, or a 400 when it is larger than the page size. */
export async function listSessionsV2(ports: ListingPorts, query: Record<string, string[]>): Promise<SessionRecord[]> {
  const params = parseQueryParams(v2SessionListParamsSchema, query);
  const filter = filterFromParams(params, ports.clock.now());
  return allMatching(ports, filter, (await currentOptions(ports)).default_page_size);
}

/** `GET /v3/configurations`: one page in name order. */
export async function listConfigurationPage(
  ports: ListingPorts,
  query: Record<string, string[]>,
): Promise<{ configurations: ConfigurationRecord[]; next: NextPage | null }> {
  const params = parseQueryParams(v3ConfigurationListParamsSchema, query);
  const limit = params.limit ?? (await currentOptions(ports)).default_page_size;
  const page = await ports.configurations.page(limit, params.after_id);
  return { configurations: page.configurations, next: nextPage(query, limit, page.next) };
}

/** `GET /v2/configurations`: every configuration, or a 400 when there are more than the page size. */
export async function listConfigurationsV2(ports: ListingPorts, query: Record<string, string[]>): Promise<ConfigurationRecord[]> {
  parseQueryParams(v2ConfigurationListParamsSchema, query);
  const pageSize = (await currentOptions(ports)).default_page_size;
  const page = await ports.configurations.page(pageSize);
  if (page.next !== undefined) throw tooLarge('configurations', pageSize);
  return page.configurations;
}
