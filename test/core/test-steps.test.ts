import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import type { ImageTests, TestProgress } from '../../functions/core/workflow/run-document.ts';
import { applyLayerProgress } from '../../functions/core/workflow/layer-steps.ts';
import { applyTestOutcome, applyTestProgress, isTestEntry } from '../../functions/core/workflow/test-steps.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const C = '33333333-3333-4333-8333-333333333333';

function runningSession(): SessionRecord {
  const session = pendingSession('s', { Compute: [A, C] });
  session.status.steps = [
    { name: 'ansible', state: 'running', start_time: 't0' },
    { name: 'ansible', layer: 'base', state: 'succeeded', start_time: 't0', end_time: 't1' },
  ];
  return session;
}

const testsOf = (record: SessionRecord) => record.status.steps?.filter((s) => s.name === 'test');

/** What the runner records of one image whose two checks passed and whose boot on `boot` ended in `bootState`. */
function imageTests(bootState: 'succeeded' | 'failed'): ImageTests {
  return {
    checks: [
      { name: 'hello', exit_code: 0, state: 'succeeded', start_time: 't2', end_time: 't3', duration_ms: 1000, log_key: 'logs/tests/a/check-hello.log' },
      { name: 'unit', exit_code: 0, state: 'succeeded', start_time: 't3', end_time: 't4', duration_ms: 500, log_key: 'logs/tests/a/check-unit.log' },
    ],
    boot: {
      accelerator: 'tcg',
      accelerator_reason: '/dev/kvm is missing',
      state: bootState,
      start_time: 't5',
      end_time: 't9',
      duration_ms: 41_000,
      log_key: 'logs/tests/a/boot-console.log',
      ...(bootState === 'failed' ? { reason: 'no match within 300 s' } : { matched_line: 'READY' }),
    },
  };
}

describe('test progress in status.steps', () => {
  it('adds the image test, each started check and the boot once its accelerator is known, after the layers', () => {
    // Arrange
    const progress: TestProgress[] = [
      {
        image_id: A,
        state: 'running',
        start_time: 't2',
        checks: [
          { name: 'hello', state: 'succeeded', start_time: 't2', end_time: 't3', duration_ms: 1000 },
          { name: 'unit', state: 'running', start_time: 't3' },
        ],
        boot: { state: 'pending' },
      },
      { image_id: C, state: 'pending', checks: [{ name: 'hello', state: 'pending' }, { name: 'unit', state: 'pending' }], boot: { state: 'pending' } },
    ];
    // Act
    const record = applyTestProgress(runningSession(), progress);
    // Assert
    expect(record.status.steps?.slice(0, 2).map((s) => s.name)).toEqual(['ansible', 'ansible']);
    expect(testsOf(record)).toEqual([
      { name: 'test', image_id: A, state: 'running', start_time: 't2' },
      { name: 'test', image_id: A, check: 'hello', state: 'succeeded', start_time: 't2', end_time: 't3', duration_ms: 1000 },
      { name: 'test', image_id: A, check: 'unit', state: 'running', start_time: 't3' },
    ]);
  });

  it('records the boot entry with its accelerator once the runner names it, and its end with the duration', () => {
    // Arrange
    const base = { image_id: A, state: 'running' as const, start_time: 't2', checks: [] };
    // Act
    const probing = applyTestProgress(runningSession(), [{ ...base, boot: { state: 'running', start_time: 't5' } }]);
    const booting = applyTestProgress(probing, [{ ...base, boot: { state: 'running', accelerator: 'tcg', start_time: 't5' } }]);
    const booted = applyTestProgress(booting, [{ ...base, state: 'succeeded', end_time: 't9', boot: { state: 'succeeded', accelerator: 'tcg', start_time: 't5', end_time: 't9', duration_ms: 41_000 } }]);
    // Assert
    expect(testsOf(probing)).toEqual([{ name: 'test', image_id: A, state: 'running', start_time: 't2' }]);
    expect(testsOf(booting)?.[1]).toEqual({ name: 'test', image_id: A, boot: 'tcg', state: 'running', start_time: 't5' });
    expect(testsOf(booted)).toEqual([
      { name: 'test', image_id: A, state: 'succeeded', start_time: 't2', end_time: 't9' },
      { name: 'test', image_id: A, boot: 'tcg', state: 'succeeded', start_time: 't5', end_time: 't9', duration_ms: 41_000 },
    ]);
  });

  it('never moves an ended entry back, and returns the same record when nothing changed', () => {
    // Arrange
    const ended = applyTestProgress(runningSession(), [
      { image_id: A, state: 'failed', start_time: 't2', end_time: 't3', checks: [{ name: 'hello', state: 'failed', start_time: 't2', end_time: 't3', duration_ms: 1000 }] },
    ]);
    // Act
    const stale = applyTestProgress(ended, [{ image_id: A, state: 'running', start_time: 't2', checks: [{ name: 'hello', state: 'running', start_time: 't2' }] }]);
    const none = applyTestProgress(ended, []);
    // Assert
    expect(stale).toBe(ended);
    expect(none).toBe(ended);
    expect(testsOf(ended)?.map((s) => s.state)).toEqual(['failed', 'failed']);
  });

  it('shows the image test running when a check has started before the image entry says so', () => {
    // Act
    const record = applyTestProgress(runningSession(), [{ image_id: A, state: 'pending', checks: [{ name: 'hello', state: 'running', start_time: 't2' }] }]);
    // Assert
    expect(testsOf(record)?.[0]).toEqual({ name: 'test', image_id: A, state: 'running' });
  });

  it('keeps layer entries and test entries apart', () => {
    // Arrange
    const tested = applyTestProgress(runningSession(), [{ image_id: A, state: 'running', start_time: 't2', checks: [{ name: 'base', state: 'running', start_time: 't2' }] }]);
    // Act
    const layered = applyLayerProgress(tested, [{ index: 0, name: 'base', state: 'succeeded', start_time: 't0', end_time: 't1' }]);
    // Assert
    expect(layered).toBe(tested);
    expect(tested.status.steps?.filter((s) => isTestEntry(s, { image_id: A, check: 'base' }))).toHaveLength(1);
    expect(tested.status.steps?.filter((s) => isTestEntry(s, { image_id: A }))).toHaveLength(1);
  });
});

describe("the outcome's tests in status.steps", () => {
  it('writes every check and the boot test as succeeded, and the image test spanning them', () => {
    // Act
    const record = applyTestOutcome(runningSession(), [{ image_id: A, tests: imageTests('succeeded') }, { image_id: C }]);
    // Assert
    expect(testsOf(record)).toEqual([
      { name: 'test', image_id: A, state: 'succeeded', start_time: 't2', end_time: 't9' },
      { name: 'test', image_id: A, check: 'hello', state: 'succeeded', start_time: 't2', end_time: 't3', duration_ms: 1000 },
      { name: 'test', image_id: A, check: 'unit', state: 'succeeded', start_time: 't3', end_time: 't4', duration_ms: 500 },
      { name: 'test', image_id: A, boot: 'tcg', state: 'succeeded', start_time: 't5', end_time: 't9', duration_ms: 41_000 },
    ]);
  });

  it('fails the image test and the boot when the boot failed, ending entries the live progress left running', () => {
    // Arrange
    const live = applyTestProgress(runningSession(), [
      {
        image_id: A,
        state: 'running',
        start_time: 't2',
        checks: [
          { name: 'hello', state: 'succeeded', start_time: 't2', end_time: 't3', duration_ms: 1000 },
          { name: 'unit', state: 'succeeded', start_time: 't3', end_time: 't4', duration_ms: 500 },
        ],
        boot: { state: 'running', accelerator: 'tcg', start_time: 't5' },
      },
    ]);
    // Act
    const record = applyTestOutcome(live, [{ image_id: A, tests: imageTests('failed') }]);
    // Assert
    expect(testsOf(record)?.map((s) => [s.check ?? s.boot ?? 'image', s.state])).toEqual([
      ['image', 'failed'],
      ['hello', 'succeeded'],
      ['unit', 'succeeded'],
      ['tcg', 'failed'],
    ]);
    expect(testsOf(record)?.[3]).toMatchObject({ end_time: 't9', duration_ms: 41_000 });
  });

  it('writes nothing for images without tests (a session without validation)', () => {
    // Arrange
    const session = runningSession();
    // Act
    const record = applyTestOutcome(session, [{ image_id: A }, { image_id: C, tests: { checks: [] } }]);
    // Assert
    expect(record).toBe(session);
  });
});
