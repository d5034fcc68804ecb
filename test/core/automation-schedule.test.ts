import { describe, expect, it } from 'vitest';
import { nextRuns, toCronerSchedule } from '../../functions/core/automations/schedule-expression.ts';

const from = new Date('2026-01-01T00:00:00Z');
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('EventBridge Scheduler expressions translated for croner', () => {
  it('puts a zero seconds field in front, turns ? into * and keeps the year last', () => {
    // Arrange / Act
    const schedule = toCronerSchedule('cron(0 3 * * ? *)', 'UTC');
    // Assert
    expect(schedule.pattern).toBe('0 0 3 * * * *');
    expect(schedule.options).toMatchObject({ mode: '7-part', alternativeWeekdays: true, domAndDow: true, timezone: 'UTC' });
  });

  it('fires cron(0 3 * * ? *) every day at 03:00 in the given time zone', () => {
    // Arrange / Act
    const utc = nextRuns('cron(0 3 * * ? *)', 'UTC', from, 2);
    const berlin = nextRuns('cron(0 3 * * ? *)', 'Europe/Berlin', from, 1);
    // Assert
    expect(iso(utc)).toEqual(['2026-01-01T03:00:00.000Z', '2026-01-02T03:00:00.000Z']);
    expect(iso(berlin)).toEqual(['2026-01-01T02:00:00.000Z']);
  });

  it('reads day-of-week numbers as AWS does (1 is Sunday) and names alike', () => {
    // Arrange / Act
    const sunday = nextRuns('cron(0 12 ? * 1 *)', 'UTC', from, 1)[0]!;
    const weekdays = nextRuns('cron(0 18 ? * MON-FRI *)', 'UTC', from, 3);
    // Assert
    expect(sunday.getUTCDay()).toBe(0);
    expect(weekdays.map((d) => d.getUTCDay())).toEqual([4, 5, 1]);
  });

  it('writes AWS a/b steps as a range croner takes', () => {
    // Arrange / Act
    const schedule = toCronerSchedule('cron(0/15 * * * ? *)', 'UTC');
    const runs = nextRuns('cron(0/15 * * * ? *)', 'UTC', from, 2);
    // Assert
    expect(schedule.pattern).toBe('0 0-59/15 * * * * *');
    expect(iso(runs)).toEqual(['2026-01-01T00:15:00.000Z', '2026-01-01T00:30:00.000Z']);
  });

  it('takes L, W and # as AWS documents them', () => {
    // Arrange / Act
    const lastDay = nextRuns('cron(0 10 L * ? *)', 'UTC', from, 1)[0]!;
    const secondTuesday = nextRuns('cron(0 10 ? * 3#2 *)', 'UTC', from, 1)[0]!;
    const nearestWeekday = nextRuns('cron(0 10 15W * ? *)', 'UTC', new Date('2026-02-01T00:00:00Z'), 1)[0]!;
    // Assert
    expect(lastDay.toISOString()).toBe('2026-01-31T10:00:00.000Z');
    expect(secondTuesday.toISOString()).toBe('2026-01-13T10:00:00.000Z');
    expect(nearestWeekday.toISOString()).toBe('2026-02-16T10:00:00.000Z');
  });

  it('honours the year field', () => {
    // Arrange / Act
    const runs = nextRuns('cron(0 10 1 1 ? 2028)', 'UTC', from, 2);
    // Assert
    expect(iso(runs)).toEqual(['2028-01-01T10:00:00.000Z']);
  });

  it('translates a rate to an interval in seconds', () => {
    // Arrange / Act
    const five = toCronerSchedule('rate(5 minutes)');
    const hour = toCronerSchedule('rate(1 hour)');
    const days = toCronerSchedule('rate(2 days)');
    // Assert
    expect(five).toMatchObject({ pattern: '* * * * * *', options: { interval: 300 }, rateSeconds: 300 });
    expect(hour.rateSeconds).toBe(3600);
    expect(days.rateSeconds).toBe(172_800);
    expect(iso(nextRuns('rate(5 minutes)', 'UTC', from, 2))).toEqual(['2026-01-01T00:05:00.000Z', '2026-01-01T00:10:00.000Z']);
  });

  it.each([
    ['cron(0 3 * * *)', 'takes 6 fields'],
    ['cron(0 3 * * * *)', "exactly one of day-of-month and day-of-week must be '?'"],
    ['cron(0 3 ? * ? *)', "exactly one of day-of-month and day-of-week must be '?'"],
    ['cron(? 3 * * ? *)', 'the minutes field'],
    ['cron(0 25 * * ? *)', 'not an EventBridge Scheduler expression'],
    ['cron(0 3 1 1 ? 2020)', 'never fires again'],
    ['rate(1 minutes)', 'singular exactly when the value is 1'],
    ['rate(5 minute)', 'singular exactly when the value is 1'],
    ['rate(0 minutes)', 'at least 1'],
    ['rate(5 weeks)', 'minute(s), hour(s) or day(s)'],
    ['at(2027-01-01T00:00:00)', 'one-time'],
    ['0 3 * * *', 'write cron('],
  ])("refuses '%s' saying why", (expression, why) => {
    // Arrange / Act
    const attempt = () => toCronerSchedule(expression, 'UTC');
    // Assert
    expect(attempt).toThrowError(why);
    expect(attempt).toThrowError(/^schedule\.expression: /);
  });

  it('refuses an unknown time zone', () => {
    // Arrange / Act
    const attempt = () => toCronerSchedule('cron(0 3 * * ? *)', 'Mars/Olympus');
    // Assert
    expect(attempt).toThrowError("schedule.timezone: 'Mars/Olympus' is not an IANA time zone");
  });
});
