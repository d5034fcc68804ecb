import { Cron, type CronOptions } from 'croner';
import { ValidationError } from '../errors.ts';

/**
 * Automation schedules are written as EventBridge Scheduler writes them, so the same string
 * works in AWS (where Scheduler runs it) and on one machine (where croner runs it):
 *
 * - `cron(minutes hours day-of-month month day-of-week year)`: six fields; exactly one of
 *   day-of-month and day-of-week is `?`; day-of-week 1-7 is SUN-SAT; `L`, `W`, `#`, names,
 *   ranges, lists and `a/b` steps as AWS documents them.
 * - `rate(value unit)`: unit `minute(s)`, `hour(s)` or `day(s)`, singular exactly when value is 1.
 *
 * The translation to croner: a seconds field `0` in front (7-part mode, with the year last),
 * `?` as `*`, `a/b` as `a-<max>/b`, Quartz weekday numbering (`alternativeWeekdays`: 1 is
 * Sunday, as in AWS) and AND-ing of the day fields (one of them is always `*` after `?`, so
 * that is AWS's rule). A rate is an every-second pattern held back by croner's `interval`.
 */

/** What croner runs for an expression: the pattern and the options that give it AWS's meaning. */
export interface CronerSchedule {
  pattern: string;
  options: Pick<CronOptions, 'mode' | 'alternativeWeekdays' | 'domAndDow' | 'timezone' | 'interval' | 'startAt'>;
  /** For a rate: its period in seconds. */
  rateSeconds?: number;
}

const FIELD = 'schedule.expression';
const FIELD_NAMES = ['minutes', 'hours', 'day-of-month', 'month', 'day-of-week', 'year'] as const;
/** Each field's highest value, for `a/b` steps (which croner writes as `a-max/b`). */
const FIELD_MAX = [59, 23, 31, 12, 7, 2199] as const;
const FIELD_CHARS = [/^[0-9,\-*/]+$/, /^[0-9,\-*/]+$/, /^[0-9,\-*/?LW]+$/, /^[0-9A-Z,\-*/]+$/, /^[0-9A-Z,\-*/?L#]+$/, /^[0-9,\-*/]+$/] as const;
const RATE_UNITS: Record<string, number> = { minute: 60, hour: 3600, day: 86_400 };

function bad(expression: string, why: string): ValidationError {
  return new ValidationError(`${FIELD}: '${expression}' is not an EventBridge Scheduler expression: ${why}`, FIELD);
}

function translateField(value: string, index: number): string {
  if (value === '?') return '*';
  // AWS's `a/b` (from a, every b) is `a-max/b` in croner's strict syntax.
  return value
    .split(',')
    .map((part) => part.replace(/^(\d+)\/(\d+)$/, (_m, from: string, step: string) => `${from}-${FIELD_MAX[index]}/${step}`))
    .join(',');
}

function translateCron(expression: string, body: string, timezone: string): CronerSchedule {
  const fields = body.trim().split(/\s+/);
  if (fields.length !== 6) throw bad(expression, `cron takes 6 fields (${FIELD_NAMES.join(' ')}), not ${fields.length}`);
  fields.forEach((value, i) => {
    if (!FIELD_CHARS[i]!.test(value.toUpperCase())) throw bad(expression, `the ${FIELD_NAMES[i]} field '${value}' has characters this field does not take`);
  });
  const [, , dom, , dow] = fields as [string, string, string, string, string, string];
  if ((dom === '?') === (dow === '?')) {
    throw bad(expression, "exactly one of day-of-month and day-of-week must be '?' (AWS does not take both or neither)");
  }
  const pattern = ['0', ...fields.map((value, i) => translateField(value.toUpperCase(), i))].join(' ');
  return { pattern, options: { mode: '7-part', alternativeWeekdays: true, domAndDow: true, timezone } };
}

function translateRate(expression: string, body: string, timezone: string): CronerSchedule {
  const match = /^\s*(\d+)\s+([a-z]+?)(s?)\s*$/.exec(body);
  if (!match) throw bad(expression, 'rate takes a whole number and a unit, as rate(5 minutes)');
  const value = Number(match[1]);
  const unit = match[2]!;
  const plural = match[3] === 's';
  const unitSeconds = RATE_UNITS[unit];
  if (unitSeconds === undefined) throw bad(expression, `the unit must be minute(s), hour(s) or day(s), not '${unit}${match[3]}'`);
  if (value < 1) throw bad(expression, 'the value must be at least 1');
  if (plural !== value > 1) throw bad(expression, `the unit is singular exactly when the value is 1 (rate(1 ${unit}), rate(${Math.max(2, value)} ${unit}s))`);
  const seconds = value * unitSeconds;
  return { pattern: '* * * * * *', options: { mode: '6-part', interval: seconds, timezone }, rateSeconds: seconds };
}

/** Throws a ValidationError on `schedule.timezone` unless it is an IANA time zone this runtime knows. */
export function checkTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new ValidationError(`schedule.timezone: '${timezone}' is not an IANA time zone (such as UTC or Europe/Berlin)`, 'schedule.timezone');
  }
}

/**
 * Translates an EventBridge Scheduler expression to croner's format. Throws a ValidationError
 * naming `schedule.expression` (or `schedule.timezone`) when AWS would refuse it, croner cannot
 * read the translation, or the schedule never fires again.
 */
export function toCronerSchedule(expression: string, timezone = 'UTC'): CronerSchedule {
  checkTimezone(timezone);
  const match = /^(cron|rate|at)\((.*)\)$/s.exec(expression.trim());
  if (!match) throw bad(expression, 'write cron(minutes hours day-of-month month day-of-week year) or rate(value unit)');
  if (match[1] === 'at') throw bad(expression, 'one-time at(...) schedules are not served; an automation recurs (use cron(...) or rate(...))');
  const schedule = match[1] === 'cron' ? translateCron(expression, match[2]!, timezone) : translateRate(expression, match[2]!, timezone);
  let job: Cron;
  try {
    job = new Cron(schedule.pattern, { ...schedule.options, paused: true });
  } catch (error) {
    throw bad(expression, (error as Error).message);
  }
  try {
    if (!job.nextRun()) throw bad(expression, 'it never fires again');
  } finally {
    job.stop();
  }
  return schedule;
}

/** The next `count` times an expression fires after `from` (for `describe` and tests). */
export function nextRuns(expression: string, timezone: string, from: Date, count: number): Date[] {
  const schedule = toCronerSchedule(expression, timezone);
  if (schedule.rateSeconds !== undefined) {
    // A rate counts from when it was armed; here, from `from`.
    return Array.from({ length: count }, (_v, i) => new Date(from.getTime() + (i + 1) * schedule.rateSeconds! * 1000));
  }
  const job = new Cron(schedule.pattern, { ...schedule.options, paused: true });
  try {
    return job.nextRuns(count, from);
  } finally {
    job.stop();
  }
}
