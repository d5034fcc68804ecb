import type { SessionRecord } from '../model/session.ts';
import type { SessionFilter } from '../../ports/session-store.ts';
import { ageSeconds } from './age.ts';
import { rfc3339 } from './rfc3339.ts';
import type { SessionFilterParams } from './query-params.ts';
import { fieldError } from './validation.ts';

/**
 * The CFS session filters: from query parameters (`status`, `succeeded`, `name_contains`,
 * `min_age`, `max_age`, v2's deprecated `age`, `tags`) to a SessionFilter, and the one
 * predicate that decides whether a session matches, used by every store (the DynamoDB adapter
 * re-checks what its indexes and FilterExpressions returned with it) and by bulk delete.
 */

/** `k=v,k2=v2` as a map; every pair needs a key and an `=`. Empty pairs are skipped. */
export function parseTagsParam(text: string, field = 'tags'): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw fieldError(field, `takes key=value pairs separated by commas, not '${pair}'`);
    tags[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return tags;
}

/**
 * The filter of parsed query parameters at `now`: `min_age` (and v2's `age`) means started
 * before now minus the age, `max_age` started after it. Empty values filter nothing.
 */
export function filterFromParams(params: SessionFilterParams & { age?: string }, now: Date): SessionFilter {
  const filter: SessionFilter = {};
  if (params.status) filter.status = params.status;
  if (params.succeeded) filter.succeeded = params.succeeded;
  if (params.name_contains) filter.nameContains = params.name_contains;
  const before = [
    params.min_age === undefined ? undefined : ageSeconds(params.min_age, 'min_age'),
    params.age === undefined ? undefined : ageSeconds(params.age, 'age'),
  ].filter((s): s is number => s !== undefined);
  // Both `age` and `min_age` mean "older than": the larger age is the narrower filter.
  // An age older than the epoch (`99999999w` fits the pattern) means the epoch: no session started before it, and a Date cannot hold it.
  const ago = (seconds: number) => rfc3339(new Date(Math.max(now.getTime() - seconds * 1000, 0)));
  if (before.length) filter.startedBefore = ago(Math.max(...before));
  const younger = params.max_age === undefined ? undefined : ageSeconds(params.max_age, 'max_age');
  if (younger !== undefined) filter.startedAfter = ago(younger);
  if (params.tags !== undefined) {
    const tags = parseTagsParam(params.tags);
    if (Object.keys(tags).length) filter.tags = tags;
  }
  return filter;
}

/** Whether a session meets every part of the filter (the authoritative check). */
export function sessionMatches(session: SessionRecord, filter: SessionFilter): boolean {
  const state = session.status.session;
  if (filter.status !== undefined && state.status !== filter.status) return false;
  if (filter.succeeded !== undefined && state.succeeded !== filter.succeeded) return false;
  if (filter.nameContains !== undefined && !session.name.includes(filter.nameContains)) return false;
  const started = Date.parse(state.start_time);
  if (filter.startedBefore !== undefined && !(started < Date.parse(filter.startedBefore))) return false;
  if (filter.startedAfter !== undefined && !(started > Date.parse(filter.startedAfter))) return false;
  for (const [key, value] of Object.entries(filter.tags ?? {})) {
    if (!Object.hasOwn(session.tags ?? {}, key) || session.tags[key] !== value) return false;
  }
  return true;
}
