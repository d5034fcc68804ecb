import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameLines, PlainRenderer } from '../../functions/cli/progress/renderers.ts';
import { outcomeLine, sessionRows, type SessionView } from '../../functions/cli/progress/session-steps.ts';
import { sessionSummary } from '../../functions/cli/summaries.ts';
import { runnerKeys, sessionKeys, testLogKey } from '../../functions/core/workflow/session-keys.ts';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';

const IMG = '11111111-1111-4111-8111-111111111111';
const NOW = new Date('2026-11-26T10:02:00Z');

type Steps = NonNullable<NonNullable<SessionView['status']>['steps']>;

function session(steps: Steps, validation?: NonNullable<SessionView['status']>['validation'], status = 'running'): SessionView {
  return {
    name: 'tested',
    target: { groups: [{ members: [IMG] }] },
    status: { session: { status, succeeded: status === 'complete' ? 'false' : 'none' }, layers: [{ name: 'base' }], steps, ...(validation ? { validation } : {}) },
  };
}

const layered: Steps = [
  { name: 'validate', state: 'succeeded', start_time: '2026-11-26T10:00:00Z', end_time: '2026-11-26T10:00:00Z' },
  { name: 'stage', image_id: IMG, state: 'succeeded', start_time: '2026-11-26T10:00:00Z', end_time: '2026-11-26T10:00:01Z' },
  { name: 'inventory', state: 'succeeded', start_time: '2026-11-26T10:00:01Z', end_time: '2026-11-26T10:00:01Z' },
  { name: 'ansible', state: 'running', start_time: '2026-11-26T10:00:01Z' },
  { name: 'ansible', layer: 'base', state: 'succeeded', start_time: '2026-11-26T10:00:01Z', end_time: '2026-11-26T10:01:00Z' },
];

const testing: Steps = [
  ...layered,
  { name: 'test', image_id: IMG, state: 'running', start_time: '2026-11-26T10:01:00Z' },
  { name: 'test', image_id: IMG, check: 'hello', state: 'succeeded', start_time: '2026-11-26T10:01:00Z', end_time: '2026-11-26T10:01:02Z', duration_ms: 1500 },
  { name: 'test', image_id: IMG, boot: 'tcg', state: 'running', start_time: '2026-11-26T10:01:05Z' },
];

describe("the step list of a session whose images are tested", () => {
  it("lists each image's test with its checks and boot after the layers and before package, with the runner's durations", () => {
    // Act
    const rows = sessionRows(session(testing));
    // Assert
    expect(rows.map((r) => [r.label, r.state])).toEqual([
      ['validate images', 'succeeded'],
      [`stage ${IMG}`, 'succeeded'],
      ['render inventory', 'succeeded'],
      ['layer 0 base', 'succeeded'],
      [`test ${IMG}`, 'running'],
      [`test ${IMG} check hello`, 'succeeded'],
      [`test ${IMG} boot (tcg)`, 'running'],
      [`package ${IMG}`, 'pending'],
      ['record artifacts', 'pending'],
    ]);
    const lines = frameLines(session(testing), NOW, 0, { columns: 120, color: false });
    expect(lines.find((l) => l.includes('check hello'))).toMatch(/✔ test \S+ check hello +1\.5s$/);
    expect(lines.find((l) => l.includes('boot (tcg)'))).toMatch(/boot \(tcg\) +55\.0s$/);
  });

  it("lists the session's planned checks and boot as pending before they start, and none for a session without validation", () => {
    // Arrange
    const planned = session(layered, { checks: [{ name: 'hello' }, { name: 'unit' }], boot: { success_pattern: 'READY' } });
    // Act
    const rows = sessionRows(planned);
    const without = sessionRows(session(layered));
    // Assert
    expect(rows.filter((r) => r.key.startsWith('test:')).map((r) => [r.label, r.state])).toEqual([
      [`test ${IMG}`, 'pending'],
      [`test ${IMG} check hello`, 'pending'],
      [`test ${IMG} check unit`, 'pending'],
      [`test ${IMG} boot`, 'pending'],
    ]);
    expect(without.some((r) => r.key.startsWith('test:'))).toBe(false);
  });

  it('prints a plain line as each check and the boot change, and says the session failed at test for the image', () => {
    // Arrange
    const lines: string[] = [];
    const renderer = new PlainRenderer((line) => lines.push(line));
    const ended: Steps = [
      ...layered,
      { name: 'test', image_id: IMG, state: 'failed', start_time: '2026-11-26T10:01:00Z', end_time: '2026-11-26T10:01:50Z' },
      testing[6]!,
      { name: 'test', image_id: IMG, boot: 'tcg', state: 'failed', start_time: '2026-11-26T10:01:05Z', end_time: '2026-11-26T10:01:50Z', duration_ms: 45_000 },
    ];
    const failed = session(ended, undefined, 'complete');
    failed.status!.failure = { step: 'test', image_id: IMG, reason: "'READY' did not appear within 300 s; the console ended: Kernel panic" };
    // Act
    renderer.update(session(testing), NOW);
    renderer.update(failed, NOW);
    // Assert
    expect(lines).toContain(`test ${IMG} check hello: succeeded (1.5s)`);
    expect(lines).toContain(`test ${IMG} boot (tcg): failed (45.0s)`);
    expect(lines).toContain(`test ${IMG}: failed (50.0s)`);
    expect(outcomeLine(failed)).toBe(`session tested failed at test (image ${IMG}): 'READY' did not appear within 300 s; the console ended: Kernel panic`);
  });

  it('names the check or the boot test of each test step in the human summary, with its duration', () => {
    // Act
    const text = sessionSummary({ name: 'tested', status: { session: { status: 'running' }, steps: testing } });
    // Assert
    expect(text).toContain(`test  succeeded  2026-11-26T10:01:00Z -> 2026-11-26T10:01:02Z  (image ${IMG}, check hello)  took 1.5s`);
    expect(text).toContain(`test  running  2026-11-26T10:01:05Z  (image ${IMG}, boot on tcg)`);
  });

  it("shows the session's validation in one line of the human summary, and none for a session without one", () => {
    // Act
    const proved = sessionSummary({ name: 'tested', status: { session: { status: 'running' }, validation: { checks: [{ name: 'hello' }, { name: 'unit' }], boot: { success_pattern: 'READY', timeout_seconds: 300 } } } });
    const plain = sessionSummary({ name: 'tested', status: { session: { status: 'running' } } });
    // Assert
    expect(proved).toContain('  validation     checks hello, unit; boot until /READY/ (300s)');
    expect(plain).not.toContain('validation');
  });
});

describe('cfs sessions logs with test logs', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  const runner = runnerKeys('c'.repeat(32));
  beforeAll(async () => {
    data = tempDataDir();
    ({ runtime } = await startServer(data.dir));
    const record = pendingSession('tested', { Compute: [IMG] });
    record.status.session.status = 'complete';
    record.status.session.succeeded = 'false';
    record.status.steps = [
      { name: 'ansible', layer: 'base', state: 'succeeded' },
      { name: 'test', image_id: IMG, check: 'hello', state: 'succeeded' },
      { name: 'test', image_id: IMG, boot: 'tcg', state: 'failed' },
    ];
    await runtime.ports.sessions.create(record);
    const document = { ...runDocumentFor('tested', runner, { image: IMG }), validation: { checks: [{ name: 'hello', command: '/usr/bin/hello' }], boot: { success_pattern: 'READY' } } };
    await runtime.ports.artifacts.put(sessionKeys.runDocument('tested'), JSON.stringify(document));
    await runtime.ports.artifacts.put(`${runner.logsPrefix}0-base.log`, 'PLAY RECAP\n');
    await runtime.ports.artifacts.put(testLogKey(runner.logsPrefix, IMG, { check: 'hello' }), 'hello, world\n');
    await runtime.ports.artifacts.put(testLogKey(runner.logsPrefix, IMG, 'boot'), 'Linux version 6.1\nKernel panic\n');
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
  });

  it('prints the layers and then every test log when following, and one test log with --test', async () => {
    // Act
    const all = await cfs(runtime, 'sessions', 'logs', 'tested', '--follow');
    const console = await cfs(runtime, 'sessions', 'logs', 'tested', '--test', `${IMG}/boot-console`);
    // Assert
    expect([all.code, all.out]).toEqual([0, 'PLAY RECAP\nhello, world\nLinux version 6.1\nKernel panic\n']);
    expect([console.code, console.out]).toEqual([0, 'Linux version 6.1\nKernel panic\n']);
  });

  it('refuses a --test that is not a test log name, and --test with --layer, in one line', async () => {
    // Act
    const malformed = await cfs(runtime, 'sessions', 'logs', 'tested', '--test', 'hello');
    const both = await cfs(runtime, 'sessions', 'logs', 'tested', '--test', `${IMG}/check-hello`, '--layer', '0');
    const unknown = await cfs(runtime, 'sessions', 'logs', 'tested', '--test', `${IMG}/check-other`);
    // Assert
    expect([malformed.code, malformed.err.trim()]).toEqual([1, "Error: --test takes IMAGE_ID/check-NAME or IMAGE_ID/boot-console, not 'hello'"]);
    expect([both.code, both.err.trim()]).toEqual([1, 'Error: --layer and --test: give one of them, not both']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.err).toContain('test');
    expect(unknown.err).toContain('check-other');
  });
});
