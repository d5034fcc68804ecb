import { afterEach, describe, expect, it, vi } from 'vitest';
import { AutomationScheduler } from '../../functions/adapters/local/automation-scheduler.ts';
import { automationRecord } from '../core/automation-fakes.ts';

afterEach(() => vi.useRealTimers());

describe('the embedded automation scheduler', () => {
  it('fires a cron schedule at its time and evaluates the automations that fired together in one run', async () => {
    // Arrange
    vi.useFakeTimers({ now: new Date('2026-01-01T02:59:58Z') });
    const runs: string[][] = [];
    const scheduler = new AutomationScheduler({ run: async (names) => void runs.push(names) });
    await scheduler.start([
      automationRecord('nightly-b'),
      automationRecord('nightly-a'),
      automationRecord('weekly', { schedule: { expression: 'cron(0 3 ? * 2 *)', timezone: 'UTC' } }),
      automationRecord('events-only', { schedule: undefined }),
    ]);
    // Act
    await vi.advanceTimersByTimeAsync(3_000);
    // Assert
    expect(scheduler.armedNames()).toEqual(['nightly-a', 'nightly-b', 'weekly']);
    expect(runs).toEqual([['nightly-a', 'nightly-b']]);
    expect(scheduler.nextRun('nightly-a')?.toISOString()).toBe('2026-01-02T03:00:00.000Z');
    expect(scheduler.nextRun('weekly')?.toISOString()).toBe('2026-01-05T03:00:00.000Z');
    await scheduler.close();
  });

  it('counts a rate from when it is armed, and re-arms or disarms as automations change', async () => {
    // Arrange
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const runs: string[][] = [];
    const scheduler = new AutomationScheduler({ run: async (names) => void runs.push(names) });
    await scheduler.armed(automationRecord('every-5', { schedule: { expression: 'rate(5 minutes)', timezone: 'UTC' } }));
    // Act
    await vi.advanceTimersByTimeAsync(4 * 60_000);
    const before = [...runs];
    await vi.advanceTimersByTimeAsync(2 * 60_000);
    await scheduler.armed(automationRecord('every-5', { schedule: undefined }));
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    // Assert
    expect(before).toEqual([]);
    expect(runs).toEqual([['every-5']]);
    expect(scheduler.armedNames()).toEqual([]);
    await scheduler.close();
  });

  it('runs one evaluation at a time and stops ticking once closed', async () => {
    // Arrange
    let release!: () => void;
    const runs: string[][] = [];
    const scheduler = new AutomationScheduler({
      batchWindowMs: 1,
      run: async (names) => {
        runs.push(names);
        if (runs.length === 1) await new Promise<void>((r) => (release = r));
      },
    });
    // Act
    scheduler.tick('a');
    await new Promise((r) => setTimeout(r, 20));
    scheduler.tick('b');
    await new Promise((r) => setTimeout(r, 20));
    const whileFirstRuns = runs.length;
    release();
    await new Promise((r) => setTimeout(r, 20));
    await scheduler.close();
    scheduler.tick('c');
    await new Promise((r) => setTimeout(r, 20));
    // Assert
    expect(whileFirstRuns).toBe(1);
    expect(runs).toEqual([['a'], ['b']]);
  });
});
