import { beforeAll, describe, expect, it } from 'vitest';

/** dashboard/steps.js: plain browser JavaScript without types, loaded as the page loads it. */
interface DashboardSteps {
  stepLabel(step: Record<string, unknown>, names: Map<string, string>): string;
  stepDurationMs(step: Record<string, unknown>, now?: number): number;
  testLogTitle(test: Record<string, unknown>, names: Map<string, string>): string;
}

const IMG = '11111111-1111-4111-8111-111111111111';
const names = new Map([[IMG, 'compute-base']]);

describe("the dashboard's step and test log labels", () => {
  let steps: DashboardSteps;
  beforeAll(async () => {
    steps = (await import(new URL('../../dashboard/steps.js', import.meta.url).href)) as DashboardSteps;
  });

  it('labels a check and a boot test with the image name, and layers and plain steps as before', () => {
    // Act
    const labels = [
      { name: 'test', image_id: IMG },
      { name: 'test', image_id: IMG, check: 'hello' },
      { name: 'test', image_id: IMG, boot: 'tcg' },
      { name: 'ansible', layer: 'base' },
      { name: 'package', image_id: '22222222-2222-4222-8222-222222222222' },
    ].map((step) => steps.stepLabel(step, names));
    // Assert
    expect(labels).toEqual(['test · compute-base', 'test · check hello · compute-base', 'test · boot (tcg) · compute-base', 'ansible · layer base', 'package · 22222222']);
  });

  it("takes the runner's duration for an ended check or boot, and the times otherwise", () => {
    // Arrange
    const now = Date.parse('2026-11-26T10:01:10Z');
    // Act
    const measured = steps.stepDurationMs({ state: 'succeeded', start_time: '2026-11-26T10:00:00Z', end_time: '2026-11-26T10:00:02Z', duration_ms: 1500 });
    const timed = steps.stepDurationMs({ state: 'succeeded', start_time: '2026-11-26T10:00:00Z', end_time: '2026-11-26T10:00:02Z' });
    const running = steps.stepDurationMs({ state: 'running', start_time: '2026-11-26T10:01:00Z', duration_ms: 5 }, now);
    const unstarted = steps.stepDurationMs({ state: 'running' }, now);
    // Assert
    expect([measured, timed, running]).toEqual([1500, 2000, 10_000]);
    expect(unstarted).toBeNaN();
  });

  it("titles each test log by its check or the boot console and the image's name (its id when unknown)", () => {
    // Act
    const check = steps.testLogTitle({ test: `${IMG}/check-hello`, image_id: IMG, check: 'hello' }, names);
    const console = steps.testLogTitle({ test: `${IMG}/boot-console`, image_id: IMG, boot: true }, new Map());
    // Assert
    expect(check).toBe('Check hello of compute-base');
    expect(console).toBe(`Boot console of ${IMG}`);
  });
});
