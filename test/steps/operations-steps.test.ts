import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanup } from '../../functions/steps/cleanup.ts';
import { failSession } from '../../functions/steps/fail-session.ts';
import { syncLayerProgress } from '../../functions/steps/layer-progress.ts';
import { recordArtifacts } from '../../functions/steps/record-artifacts.ts';
import { renderInventoryStep } from '../../functions/steps/render-inventory.ts';
import { stageImage } from '../../functions/steps/stage-image.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';

const debugDetails = {
  workspace: '/data/work/workspaces/s1',
  inventory: '/data/work/workspaces/s1/inventory.yaml',
  images: [{ image_id: A, root: `/data/work/workspaces/s1/images/${A}`, enter: 'chroot … /bin/sh' }],
  layers: [{ index: 0, name: 'base', directory: '/data/work/workspaces/s1/layers/0', command: 'cd … && ansible-playbook …' }],
};

describe('the steps that operate sessions', () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  async function readJson(key: string): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const c of await ports.artifacts.get(key)) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
  }

  async function failedLayerOutcome(debug?: typeof debugDetails) {
    await ports.artifacts.put(
      'sessions/s1/runner-outcome.json',
      JSON.stringify({ session: 's1', status: 'failed', reason: 'layer 0 failed', failed_layer: 'base', started: 't0', finished: 't1', layers: [], images: [], ...(debug ? { debug } : {}) }),
    );
  }

  it('asks the runner for live progress, and for a debug hold only when the session wants one', async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }, { debug_on_failure: true }));
    await ports.sessionTable.create(pendingSession('s2', { Compute: [A] }));
    await stageImage(ports, { session: 's1', image_id: A });
    await stageImage(ports, { session: 's2', image_id: A });
    // Act
    const held = await readJson((await renderInventoryStep(ports, { session: 's1' })).document_key);
    const plain = await readJson((await renderInventoryStep(ports, { session: 's2' })).document_key);
    // Assert
    expect(held).toMatchObject({ debug_hold: true, progress_key: expect.stringMatching(/^runner\/[0-9a-f]{32}\/runner-progress\.json$/) });
    expect(plain.debug_hold).toBeUndefined();
    expect(plain.progress_key).toMatch(/^runner\/[0-9a-f]{32}\/runner-progress\.json$/);
    // Each session's runner writes under a prefix of its own.
    expect(plain.progress_key).not.toBe(held.progress_key);
  });

  it('records a debug hold for debug_wait_time when the runner kept the workspace of a failed layer, and keeps the session running with succeeded none', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }, { debug_on_failure: true }));
    await failedLayerOutcome(debugDetails);
    ports.settings = async () => ({ ...(await fakeStepPorts().settings()), debugWaitSeconds: 120 });
    // Act
    const failure = await failSession(ports, { session: 's1', error: { Error: 'States.TaskFailed', Cause: 'exit 1' } });
    // Assert
    const session = await ports.sessions.get('s1');
    expect(failure).toMatchObject({ step: 'ansible', layer: 'base' });
    expect(session?.status.debug).toEqual({ until: '2026-11-26T10:02:00.000Z', ...debugDetails });
    expect(session?.status.failure).toMatchObject({ step: 'ansible', layer: 'base' });
    expect(session?.status.session).toMatchObject({ status: 'running', succeeded: 'none' });
    expect(session?.status.session.completion_time).toBeUndefined();
    // Retention counts from the hold's end, and the completion is announced then.
    expect(session?.expires_at).toBeUndefined();
    expect(ports.published.filter((e) => e.detailType === 'Session Completed')).toEqual([]);
  });

  it('never fails a held session a second time: a later failure path (a stop, a restart) leaves it held and running', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }, { debug_on_failure: true }));
    await failedLayerOutcome(debugDetails);
    await failSession(ports, { session: 's1', error: { Error: 'States.TaskFailed', Cause: 'exit 1' } });
    const held = await ports.sessions.get('s1');
    // Act
    const again = await failSession(ports, { session: 's1', reason: 'interrupted: the server shut down while the session ran' });
    // Assert
    expect(again).toEqual(held?.status.failure);
    expect(await ports.sessions.get('s1')).toEqual(held);
  });

  it('records no hold when the session was cancelled or debug_wait_time is 0', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }, { debug_on_failure: true }));
    await ports.sessionTable.create(pendingSession('s2', { Compute: [A] }, { debug_on_failure: true }));
    await failedLayerOutcome(debugDetails);
    await ports.artifacts.put('sessions/s2/runner-outcome.json', JSON.stringify({ session: 's2', status: 'failed', started: 't0', finished: 't1', layers: [], images: [], debug: debugDetails }));
    // Act
    await failSession(ports, { session: 's1', reason: 'the session was deleted while it ran' });
    ports.settings = async () => ({ ...(await fakeStepPorts().settings()), debugWaitSeconds: 0 });
    await failSession(ports, { session: 's2', error: { Error: 'States.TaskFailed' } });
    // Assert
    expect((await ports.sessions.get('s1'))?.status.debug).toBeUndefined();
    expect((await ports.sessions.get('s2'))?.status.debug).toBeUndefined();
  });

  it('leaves a held workspace to its hold and removes any other', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('held', { Compute: [A] }));
    await ports.sessionTable.update('held', (s) => ({ ...s, status: { ...s.status, debug: { until: '2026-11-26T11:00:00Z', ...debugDetails } } }));
    await ports.sessionTable.create(pendingSession('plain', { Compute: [A] }));
    const removed: string[] = [];
    const workspaces = { remove: async (name: string) => void removed.push(name) };
    // Act
    await cleanup({ artifacts: ports.artifacts, sessions: ports.sessions, workspaces }, { session: 'held' });
    await cleanup({ artifacts: ports.artifacts, sessions: ports.sessions, workspaces }, { session: 'plain' });
    // Assert
    expect(removed).toEqual(['plain']);
  });

  it('sets the TTL attribute when a session succeeds, none when sessions are kept for ever', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await ports.sessionTable.create(pendingSession('s2', { Compute: [A] }));
    // Act
    await recordArtifacts(ports, { session: 's1', results: [] });
    ports.settings = async () => ({ ...(await fakeStepPorts().settings()), sessionTtlSeconds: 0 });
    await recordArtifacts(ports, { session: 's2', results: [] });
    // Assert
    expect((await ports.sessions.get('s1'))?.expires_at).toBe(Date.parse('2026-11-26T10:00:00Z') / 1000 + 7 * 86_400);
    expect((await ports.sessions.get('s2'))?.expires_at).toBeUndefined();
  });

  it("copies the runner's layer progress into status.steps", async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await ports.artifacts.put(
      'sessions/s1/runner-progress.json',
      JSON.stringify({ session: 's1', updated: 't', layers: [{ index: 0, name: 'base', state: 'running', start_time: '2026-11-26T10:00:05Z' }] }),
    );
    // Act
    await syncLayerProgress(ports, 's1');
    await syncLayerProgress(ports, 'gone');
    // Assert
    expect((await ports.sessions.get('s1'))?.status.steps).toEqual([{ name: 'ansible', layer: 'base', state: 'running', start_time: '2026-11-26T10:00:05Z' }]);
  });
});
