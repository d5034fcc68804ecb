import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnerKeys, sessionKeys, testLogKey } from '../../functions/core/workflow/session-keys.ts';
import { FakeWorkflow, MemorySessions } from '../helpers/cfs-fakes.ts';
import { startFakeStepApp } from '../helpers/fake-step-app.ts';
import type { FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';
import { call } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

const A = '11111111-1111-4111-8111-111111111111';
const runner = runnerKeys('d'.repeat(32));

describe("a running session's tests through the API", () => {
  let step: FakeStepPorts;
  let app: Hono;
  const sessions = new MemorySessions();

  beforeAll(async () => {
    ({ step, app } = startFakeStepApp({ sessions, workflow: new FakeWorkflow() }));
    // The Ansible step runs and nothing copies the runner's progress into the record (as in AWS).
    const live = pendingSession('live', { Compute: [A] });
    live.status.session.status = 'running';
    live.status.steps = [{ name: 'ansible', state: 'running', start_time: '2026-11-26T10:00:00Z' }];
    await sessions.create(live);
    const document = { ...runDocumentFor('live', runner, { image: A }), progress_key: runner.progress, validation: { checks: [{ name: 'hello', command: '/usr/bin/hello' }], boot: { success_pattern: 'READY' } } };
    await step.artifacts.put(sessionKeys.runDocument('live'), JSON.stringify(document));
    await step.artifacts.put(
      runner.progress,
      JSON.stringify({
        session: 'live',
        updated: '2026-11-26T10:01:00Z',
        layers: [{ index: 0, name: 'base', state: 'succeeded', start_time: '2026-11-26T10:00:01Z', end_time: '2026-11-26T10:00:40Z' }],
        tests: [
          {
            image_id: A,
            state: 'running',
            start_time: '2026-11-26T10:00:41Z',
            checks: [{ name: 'hello', state: 'succeeded', start_time: '2026-11-26T10:00:41Z', end_time: '2026-11-26T10:00:42Z', duration_ms: 900 }],
            boot: { state: 'running', accelerator: 'tcg', start_time: '2026-11-26T10:00:43Z' },
          },
        ],
      }),
    );
    await step.artifacts.put(`${runner.logsPrefix}0-base.log`, 'PLAY RECAP\n');
    await step.artifacts.put(testLogKey(runner.logsPrefix, A, { check: 'hello' }), 'hello, world\n');
    await step.artifacts.put(testLogKey(runner.logsPrefix, A, 'boot'), 'Linux version 6.1\nRun /init');
  });
  afterAll(() => step.dispose());

  it("describes the session with each image's test as the runner last reported it, valid against the spec", async () => {
    // Act
    const v3 = await call(app, 'GET', '/apis/cfs/v3/sessions/live');
    // Assert
    expect(v3.body.status.steps.filter((s: { name: string }) => s.name === 'test')).toEqual([
      { name: 'test', image_id: A, state: 'running', start_time: '2026-11-26T10:00:41Z' },
      { name: 'test', image_id: A, check: 'hello', state: 'succeeded', start_time: '2026-11-26T10:00:41Z', end_time: '2026-11-26T10:00:42Z', duration_ms: 900 },
      { name: 'test', image_id: A, boot: 'tcg', state: 'running', start_time: '2026-11-26T10:00:43Z' },
    ]);
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, v3.body)).toBeUndefined();
    expect((await sessions.get('live'))?.status.steps).toHaveLength(1);
  });

  it('follows the logs from the layer into the test logs, with their live states, and reads the boot console alone', async () => {
    // Act
    const all = await call(app, 'GET', '/apis/cfs/v3/sessions/live/logs');
    const console = await call(app, 'GET', `/apis/cfs/v3/sessions/live/logs?test=${encodeURIComponent(`${A}/boot-console`)}`);
    // Assert
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ text: 'PLAY RECAP\nhello, world\nLinux version 6.1\n', cursor: 't1:18', complete: false });
    expect(all.body.tests.map((t: { test: string; state: string }) => [t.test, t.state])).toEqual([
      [`${A}/check-hello`, 'succeeded'],
      [`${A}/boot-console`, 'running'],
    ]);
    expect(console.body).toMatchObject({ test: `${A}/boot-console`, text: 'Linux version 6.1\n', cursor: 't1:18', complete: false });
  });

  it('answers 400 naming test when it names no test log of the session', async () => {
    // Act
    const unknown = await call(app, 'GET', `/apis/cfs/v3/sessions/live/logs?test=${encodeURIComponent(`${A}/check-other`)}`);
    const both = await call(app, 'GET', `/apis/cfs/v3/sessions/live/logs?layer=0&test=${encodeURIComponent(`${A}/check-hello`)}`);
    // Assert
    expect([unknown.status, unknown.body.field]).toEqual([400, 'test']);
    expect([both.status, both.body.field]).toEqual([400, 'test']);
  });
});
