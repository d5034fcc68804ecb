import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endHold } from '../../functions/core/sessions/debug-hold.ts';
import { failSession } from '../../functions/steps/fail-session.ts';
import { FakeWorkflow, MemorySessions } from '../helpers/cfs-fakes.ts';
import { startFakeStepApp } from '../helpers/fake-step-app.ts';
import type { FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';
import { call } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

const A = '11111111-1111-4111-8111-111111111111';

/** What the runner records of a failed layer whose workspace it kept. */
const kept = {
  workspace: '/data/work/workspaces/held',
  inventory: '/data/work/workspaces/held/inventory/inventory.yaml',
  images: [{ image_id: A, root: `/data/work/workspaces/held/images/${A}`, enter: `cfs sessions debug held --enter ${A}` }],
  layers: [{ index: 0, name: 'base', directory: '/data/work/workspaces/held/layers/0', command: 'cfs sessions debug held --rerun 0' }],
};

/** A workflow that ends holds as the embedded engine does. */
class HoldingWorkflow extends FakeWorkflow {
  constructor(private readonly sessions: MemorySessions) {
    super();
  }
  async releaseHold(name: string) {
    await this.sessions.update(name, (s) => endHold(s, '2026-11-26T10:30:00.000Z', 7 * 86_400));
  }
}

describe('a session held for debugging through the API', () => {
  let step: FakeStepPorts;
  let app: Hono;
  const sessions = new MemorySessions();

  beforeAll(async () => {
    ({ step, app } = startFakeStepApp({ sessions, workflow: new HoldingWorkflow(sessions) }));
    // Failed in a layer by the real failure step, with the runner's outcome keeping the workspace.
    const held = pendingSession('held', { Compute: [A] }, { debug_on_failure: true });
    held.status.session = { ...held.status.session, status: 'running', job: 'local:held:1' };
    held.status.steps = [{ name: 'ansible', state: 'running', start_time: '2026-11-26T09:59:00Z' }];
    await sessions.create(held);
    await step.artifacts.put(
      'sessions/held/runner-outcome.json',
      JSON.stringify({ session: 'held', status: 'failed', reason: "layer 0 'base' failed", failed_layer: 'base', started: 't0', finished: 't1', layers: [], images: [], debug: kept }),
    );
    await failSession({ ...step, sessions }, { session: 'held', error: { Error: 'States.TaskFailed', Cause: 'the runner exited with code 4' } });
    const plain = pendingSession('plain', { Compute: [A] });
    plain.status.session = { ...plain.status.session, status: 'complete', succeeded: 'false', completion_time: '2026-11-26T09:00:00Z' };
    await sessions.create(plain);
  });
  afterAll(() => step.dispose());

  it('answers running with succeeded none in v3 and v2 while held, with the failure and the hold (where, until when), valid against the spec', async () => {
    // Act
    const v3 = await call(app, 'GET', '/apis/cfs/v3/sessions/held');
    const v2 = await call(app, 'GET', '/apis/cfs/v2/sessions/held');
    // Assert
    expect(v3.body.status.session).toMatchObject({ status: 'running', succeeded: 'none' });
    expect(v3.body.status.session.completion_time).toBeUndefined();
    expect(v3.body.status.failure).toMatchObject({ step: 'ansible', layer: 'base' });
    expect(v3.body.status.debug).toMatchObject({ until: '2026-11-26T11:00:00.000Z', workspace: kept.workspace, images: kept.images });
    expect(v2.body.status.session).toMatchObject({ status: 'running', succeeded: 'none' });
    expect(v2.body.status.session.completionTime ?? null).toBeNull();
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, v3.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/sessions/{session_name}', 200, v2.body)).toBeUndefined();
  });

  it('lists a held session among the running ones and those with succeeded none, not among the completed or failed', async () => {
    // Act
    const names = async (path: string) => {
      const answer = await call(app, 'GET', path);
      return (Array.isArray(answer.body) ? answer.body : answer.body.sessions).map((s: { name: string }) => s.name);
    };
    // Assert
    expect(await names('/apis/cfs/v3/sessions?status=running')).toEqual(['held']);
    expect(await names('/apis/cfs/v3/sessions?succeeded=none')).toEqual(['held']);
    expect(await names('/apis/cfs/v3/sessions?status=complete')).toEqual(['plain']);
    expect(await names('/apis/cfs/v3/sessions?succeeded=false')).toEqual(['plain']);
    expect(await names('/apis/cfs/v2/sessions?status=running')).toEqual(['held']);
    expect(await names('/apis/cfs/v2/sessions?succeeded=none')).toEqual(['held']);
  });

  it("answers its logs as ended while held, so `cfs sessions logs --follow` stops rather than waiting for the hold's end", async () => {
    // Arrange
    await step.artifacts.put('sessions/held/logs/0-base.log', "# CFS session held, layer 0\nfatal: [host]: FAILED!\n");
    // Act
    const logs = await call(app, 'GET', '/apis/cfs/v3/sessions/held/logs');
    // Assert
    expect(logs.status).toBe(200);
    expect(logs.body.text).toContain('FAILED!');
    expect(logs.body.complete).toBe(true);
  });

  it('completes it as failed when the hold is released, its completion time then', async () => {
    // Act
    const released = await call(app, 'POST', '/apis/cfs/v3/sessions/held/release');
    const v2 = await call(app, 'GET', '/apis/cfs/v2/sessions/held');
    // Assert
    expect(released.status).toBe(200);
    expect(released.body.status.session).toMatchObject({ status: 'complete', succeeded: 'false', completion_time: '2026-11-26T10:30:00.000Z' });
    expect(released.body.status.debug.released_at).toBe('2026-11-26T10:30:00.000Z');
    expect(released.body.status.failure).toMatchObject({ step: 'ansible', layer: 'base' });
    expect(v2.body.status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
  });
});
