import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markHoldReleased } from '../../functions/core/sessions/debug-hold.ts';
import { FakeWorkflow, MemorySessions } from '../helpers/cfs-fakes.ts';
import { startFakeStepApp } from '../helpers/fake-step-app.ts';
import type { FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';
import { call } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

const A = '11111111-1111-4111-8111-111111111111';

/** A workflow that can release holds, as the embedded engine does. */
class HoldingWorkflow extends FakeWorkflow {
  constructor(private readonly sessions: MemorySessions) {
    super();
  }
  async releaseHold(name: string) {
    await this.sessions.update(name, (s) => markHoldReleased(s, '2026-11-26T10:30:00Z'));
  }
}

describe('session logs and debug release through the API', () => {
  let step: FakeStepPorts;
  let app: Hono;
  const sessions = new MemorySessions();

  beforeAll(async () => {
    ({ step, app } = startFakeStepApp({ sessions, workflow: new HoldingWorkflow(sessions) }));
    const running = pendingSession('running', { Compute: [A] });
    running.status.session.status = 'running';
    running.status.steps = [{ name: 'ansible', layer: 'base', state: 'running', start_time: '2026-11-26T10:00:01Z' }];
    await sessions.create(running);
    const held = pendingSession('held', { Compute: [A] }, { debug_on_failure: true });
    held.status.session = { status: 'complete', succeeded: 'false', start_time: '2026-11-26T09:00:00Z', completion_time: '2026-11-26T09:10:00Z' };
    held.status.debug = { until: '2026-11-26T10:10:00Z', workspace: '/w', inventory: '/w/inventory.yaml', images: [], layers: [] };
    await sessions.create(held);
    await step.artifacts.put('sessions/running/logs/0-base.log', '# CFS session running, layer 0\nPLAY [cfs_image]\nTASK [par');
  });
  afterAll(() => step.dispose());

  it('describes a running session with each layer as the runner last reported it, without writing the record', async () => {
    // Arrange: the Ansible step runs and no engine copies the runner's progress (as in AWS).
    const live = pendingSession('live', { Compute: [A] });
    live.status.session.status = 'running';
    live.status.steps = [{ name: 'ansible', state: 'running', start_time: '2026-11-26T10:00:00Z' }];
    await sessions.create(live);
    const layers = [
      { index: 0, name: 'base', state: 'succeeded', start_time: '2026-11-26T10:00:01Z', end_time: '2026-11-26T10:00:09Z' },
      { index: 1, name: 'site', state: 'running', start_time: '2026-11-26T10:00:09Z' },
      { index: 2, name: 'last', state: 'pending' },
    ];
    await step.artifacts.put('sessions/live/runner-progress.json', JSON.stringify({ session: 'live', updated: '2026-11-26T10:00:09Z', layers }));
    // Act
    const v3 = await call(app, 'GET', '/apis/cfs/v3/sessions/live');
    const v2 = await call(app, 'GET', '/apis/cfs/v2/sessions/live');
    // Assert
    const expected = [
      { name: 'ansible', layer: 'base', state: 'succeeded', start_time: '2026-11-26T10:00:01Z', end_time: '2026-11-26T10:00:09Z' },
      { name: 'ansible', layer: 'site', state: 'running', start_time: '2026-11-26T10:00:09Z' },
    ];
    expect(v3.body.status.steps.slice(1)).toEqual(expected);
    expect(v2.body.status.steps.slice(1)).toHaveLength(2);
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, v3.body)).toBeUndefined();
    expect((await sessions.get('live'))?.status.steps).toEqual(live.status.steps);
  });

  it('gives v3 sessions a logs link, valid against the spec, and shows clone URLs without credentials', async () => {
    // Act
    const v3 = await call(app, 'GET', '/apis/cfs/v3/sessions/running');
    const v2 = await call(app, 'GET', '/apis/cfs/v2/sessions/running');
    // Assert
    expect(v3.body.logs).toBe('/apis/cfs/v3/sessions/running/logs');
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, v3.body)).toBeUndefined();
    expect(v2.body.logs).toBeUndefined();
    expect(v3.text).not.toContain('secret');
    expect(v2.text).not.toContain('secret');
    expect(v3.body.status.layers[0].clone_url).toBe('https://git.example/base.git');
  });

  it('answers whole lines so far with a cursor, and what follows from that cursor', async () => {
    // Act
    const first = await call(app, 'GET', '/apis/cfs/v3/sessions/running/logs');
    await step.artifacts.put('sessions/running/logs/0-base.log', '# CFS session running, layer 0\nPLAY [cfs_image]\nTASK [pause]\nok: [x]\n');
    const next = await call(app, 'GET', `/apis/cfs/v3/sessions/running/logs?cursor=${first.body.cursor}`);
    // Assert
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ session: 'running', text: '# CFS session running, layer 0\nPLAY [cfs_image]\n', complete: false, layers: [{ index: 0, name: 'base', state: 'running' }] });
    expect(next.body.text).toBe('TASK [pause]\nok: [x]\n');
  });

  it('refuses unknown query parameters, bad cursors and other methods', async () => {
    // Act
    const unknown = await call(app, 'GET', '/apis/cfs/v3/sessions/running/logs?follow=true');
    const cursor = await call(app, 'GET', '/apis/cfs/v3/sessions/running/logs?cursor=x');
    const method = await call(app, 'DELETE', '/apis/cfs/v3/sessions/running/logs');
    const missing = await call(app, 'GET', '/apis/cfs/v3/sessions/nope/logs');
    // Assert
    expect([unknown.status, cursor.status, method.status, missing.status]).toEqual([400, 400, 405, 404]);
    expect(cursor.body.field).toBe('cursor');
  });

  it('releases a debug hold once (200 with the session), then answers 409', async () => {
    // Act
    const released = await call(app, 'POST', '/apis/cfs/v3/sessions/held/release');
    const again = await call(app, 'POST', '/apis/cfs/v3/sessions/held/release');
    const nothing = await call(app, 'POST', '/apis/cfs/v3/sessions/running/release');
    // Assert
    expect(released.status).toBe(200);
    expect(released.body.status.debug.released_at).toBe('2026-11-26T10:30:00Z');
    expect(again.status).toBe(409);
    expect(nothing.status).toBe(409);
  });
});
