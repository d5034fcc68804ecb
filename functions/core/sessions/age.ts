import { fieldError } from './validation.ts';

/**
 * CFS's ages (`min_age`, `max_age`, v2's `age`, the options' `session_ttl`): the pattern the
 * query and options schemas check, and the seconds an age stands for. A module of its own so the
 * filters and the query parameters' schemas both use it without importing each other.
 */

/** CFS's age pattern: empty (no filter), or a count of minutes, hours, days or weeks (`30m`, `1h`, `2d`, `3w`). */
export const AGE_PATTERN = /^(?:[0-9]+[mMhHdDwW]){0,1}$/;

const UNIT_SECONDS: Record<string, number> = { m: 60, h: 3600, d: 86_400, w: 604_800 };

/** An age (`1h`, `2d`, `3w`) in seconds; undefined for the empty age, which filters nothing. */
export function ageSeconds(age: string, field: string): number | undefined {
  if (!AGE_PATTERN.test(age)) throw fieldError(field, `must be a number followed by m, h, d or w (e.g. 1h, 2d, 3w), not '${age}'`);
  if (age === '') return undefined;
  return Number(age.slice(0, -1)) * UNIT_SECONDS[age.slice(-1).toLowerCase()]!;
}
