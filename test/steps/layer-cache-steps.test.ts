import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSessionLogs } from '../../functions/core/sessions/logs.ts';
import { applyLayerProgress } from '../../functions/core/workflow/layer-steps.ts';
import { applyLayerCacheOutcome, cachedLabel, layerKeysInOrder } from '../../functions/core/workflow/layer-cache-status.ts';
import { findRunnerLocations, readRunDocument } from '../../functions/core/workflow/run-document-store.ts';
import { failSession } from '../../functions/steps/fail-session.ts';
import { recordArtifacts } from '../../functions/steps/record-artifacts.ts';
import { renderInventoryStep } from '../../functions/steps/render-inventory.ts';
import { stageImage } from '../../functions/steps/stage-image.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../functions/steps/step-ports.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const KEY = (c: string) => c.repeat(64);
const THREE_LAYERS = ['base', 'site', 'last'].map((name, i) => ({ name, clone_url: 'https://git.example/r.git', commit: String(i).repeat(40), playbook: 'site.yml' }));

describe('the layer cache in the control-plane steps (issue 19)', () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  async function stagedSession(name: string, extra: Parameters<typeof pendingSession>[2] = {}) {
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession(name, { Compute: [A] }, { ...extra, status: { ...pendingSession(name, {}).status, layers: THREE_LAYERS } }));
    return stageImage(ports, { session: name, image_id: A });
  }

  async function writeOutcome(session: string, outcome: Record<string, unknown>) {
    await ports.artifacts.put((await findRunnerLocations(ports.artifacts, session)).outcome, JSON.stringify(outcome));
  }

  it('writes the run document a layer cache that reuses, with the maximum age in force, and one that does not reuse for a session that asked for a full run', async () => {
    // Arrange
    await stagedSession('usual');
    await ports.sessionTable.create({ ...pendingSession('full', { Compute: [A] }), layer_cache: false });
    await stageImage(ports, { session: 'full', image_id: A });
    const settings = ports.settings;
    ports.settings = async () => ({ ...(await settings()), layerCache: { enabled: true, maxAgeSeconds: 3600, maxBytes: null } });
    // Act
    await renderInventoryStep(ports, { session: 'usual' });
    await renderInventoryStep(ports, { session: 'full' });
    // Assert
    expect((await readRunDocument(ports.artifacts, 'usual'))!.layer_cache).toEqual({ reuse: true, max_age_seconds: 3600 });
    expect((await readRunDocument(ports.artifacts, 'full'))!.layer_cache).toEqual({ reuse: false, max_age_seconds: 3600 });
  });

  it('writes no layer cache into the run document when the setting is off, and the default 7 days when it is not set', async () => {
    // Arrange
    await stagedSession('off');
    await ports.sessionTable.create(pendingSession('default', { Compute: [A] }));
    await stageImage(ports, { session: 'default', image_id: A });
    const settings = ports.settings;
    // Act
    await renderInventoryStep(ports, { session: 'default' });
    ports.settings = async () => ({ ...(await settings()), layerCache: { ...DEFAULT_WORKFLOW_SETTINGS.layerCache!, enabled: false } });
    await renderInventoryStep(ports, { session: 'off' });
    // Assert
    expect((await readRunDocument(ports.artifacts, 'default'))!.layer_cache).toEqual({ reuse: true, max_age_seconds: 604_800 });
    expect(await readRunDocument(ports.artifacts, 'off')).not.toHaveProperty('layer_cache');
  });

  it('completes a session with its cached layers shown cached from the session that recorded them, its layer keys in status, and the keys in the result image metadata', async () => {
    // Arrange
    const { result_id: RESULT } = await stagedSession('s1');
    await renderInventoryStep(ports, { session: 's1' });
    await ports.imageTable.create({ id: RESULT, name: 'a_cfs_s1', created: 't', arch: 'x86_64', metadata: { cfs_session: 's1' }, pending_session: 's1' });
    const recorded = { session: 'earlier', created: '2026-11-26T08:00:00Z' };
    await writeOutcome('s1', {
      session: 's1',
      status: 'succeeded',
      started: 't0',
      finished: 't1',
      images: [
        {
          image_id: A,
          result_id: RESULT,
          result_name: 'a_cfs_s1',
          staged: true,
          customized: true,
          layer_keys: [
            { index: 2, key: KEY('c') },
            { index: 0, key: KEY('a') },
            { index: 1, key: KEY('b') },
          ],
        },
      ],
      layers: [
        { index: 0, name: 'base', exit_code: null, duration_ms: 0, log_key: 'l0', state: 'cached', cached: recorded },
        { index: 1, name: 'site', exit_code: null, duration_ms: 0, log_key: 'l1', state: 'cached', cached: recorded },
        { index: 2, name: 'last', exit_code: 0, duration_ms: 900, log_key: 'l2', state: 'succeeded' },
      ],
    });
    await ports.artifacts.put(
      (await findRunnerLocations(ports.artifacts, 's1')).progress,
      JSON.stringify({
        session: 's1',
        updated: 't',
        layers: [
          { index: 0, name: 'base', state: 'cached' },
          { index: 1, name: 'site', state: 'cached' },
          { index: 2, name: 'last', state: 'running', start_time: '2026-11-26T10:01:00Z' },
        ],
      }),
    );
    // Act
    await recordArtifacts(ports, { session: 's1', results: [{ image_id: A, result_id: RESULT }] });
    // Assert
    const session = (await ports.sessions.get('s1'))!;
    const layers = session.status.steps!.filter((s) => s.layer !== undefined);
    expect(layers).toEqual([
      { name: 'ansible', layer: 'base', state: 'cached', cached_from: recorded },
      { name: 'ansible', layer: 'site', state: 'cached', cached_from: recorded },
      expect.objectContaining({ name: 'ansible', layer: 'last', state: 'succeeded' }),
    ]);
    expect(session.status.layer_keys).toEqual({ [A]: [KEY('a'), KEY('b'), KEY('c')] });
    expect((await ports.images.get(RESULT))!.metadata).toEqual({ cfs_session: 's1', cfs_layer_keys: `${KEY('a')},${KEY('b')},${KEY('c')}` });
  });

  it('fails a session at layer 2 with layers 0 and 1 shown cached and every key the runner named kept', async () => {
    // Arrange
    await stagedSession('s1');
    await renderInventoryStep(ports, { session: 's1' });
    const recorded = { session: 'earlier', created: '2026-11-26T08:00:00Z' };
    await writeOutcome('s1', {
      session: 's1',
      status: 'failed',
      reason: 'layer last failed',
      failed_layer: 'last',
      started: 't0',
      finished: 't1',
      images: [{ image_id: A, result_id: 'r', result_name: 'r', staged: true, customized: false, layer_keys: [0, 1, 2].map((index) => ({ index, key: KEY('abc'[index]!) })) }],
      layers: [
        { index: 0, name: 'base', exit_code: null, duration_ms: 0, log_key: 'l0', state: 'cached', cached: recorded },
        { index: 1, name: 'site', exit_code: null, duration_ms: 0, log_key: 'l1', state: 'cached', cached: recorded },
        { index: 2, name: 'last', exit_code: 2, duration_ms: 900, log_key: 'l2', state: 'failed' },
      ],
    });
    // Act
    const failure = await failSession(ports, { session: 's1', error: { Error: 'States.TaskFailed', Cause: 'exit 1' } });
    // Assert
    const session = (await ports.sessions.get('s1'))!;
    expect(failure).toMatchObject({ step: 'ansible', layer: 'last' });
    expect(session.status.steps!.filter((s) => s.state === 'cached').map((s) => [s.layer, s.cached_from])).toEqual([
      ['base', recorded],
      ['site', recorded],
    ]);
    expect(session.status.layer_keys).toEqual({ [A]: [KEY('a'), KEY('b'), KEY('c')] });
  });

  it('follows the logs past a cached layer to the layer that runs, before that one has written anything', async () => {
    // Arrange
    await stagedSession('s1');
    await renderInventoryStep(ports, { session: 's1' });
    await ports.sessions.update('s1', (s) => ({
      ...s,
      status: {
        ...s.status,
        session: { ...s.status.session, status: 'running' },
        steps: [
          { name: 'ansible', state: 'running' },
          { name: 'ansible', layer: 'base', state: 'cached' },
          { name: 'ansible', layer: 'site', state: 'running', start_time: '2026-11-26T10:01:00Z' },
        ],
      },
    }));
    // Act
    const chunk = await readSessionLogs(ports, 's1');
    // Assert
    expect(chunk.layers.map((l) => l.state)).toEqual(['cached', 'running', 'pending']);
    expect(chunk.cursor).toBe('1:0');
    expect(chunk.complete).toBe(false);
  });

  it('never moves a cached layer back to running on a stale progress report', () => {
    // Arrange
    const record = applyLayerCacheOutcome(pendingSession('s1', { Compute: [A] }), {
      images: [],
      layers: [{ index: 0, name: 'base', exit_code: null, duration_ms: 0, log_key: 'l', state: 'cached', cached: { session: 'x', created: 'c' } }],
    });
    // Act
    const after = applyLayerProgress(record, [{ index: 0, name: 'base', state: 'running', start_time: 't' }]);
    // Assert
    expect(after).toBe(record);
    expect(after.status.steps).toEqual([{ name: 'ansible', layer: 'base', state: 'cached', cached_from: { session: 'x', created: 'c' } }]);
  });

  it('shows a cached layer with the session it came from while the run goes on, before the outcome', () => {
    // Arrange
    const record = pendingSession('s1', { Compute: [A] });
    // Act
    const live = applyLayerProgress(record, [
      { index: 0, name: 'base', state: 'cached', cached: { session: 'build-7', created: '2026-11-26T08:00:00Z' } },
      { index: 1, name: 'site', state: 'running', start_time: 't' },
    ]);
    // Assert
    expect(live.status.steps).toEqual([
      { name: 'ansible', layer: 'base', state: 'cached', cached_from: { session: 'build-7', created: '2026-11-26T08:00:00Z' } },
      { name: 'ansible', layer: 'site', state: 'running', start_time: 't' },
    ]);
  });

  it('keeps the layer keys from layer 0 up to the first layer without one, and labels a cached layer with its session and age', () => {
    // Act
    const keys = layerKeysInOrder({ layer_keys: [{ index: 0, key: KEY('a') }, { index: 2, key: KEY('c') }] });
    const label = cachedLabel({ session: 'build-7', created: '2026-11-26T08:00:00Z' }, new Date('2026-11-26T10:05:00Z'));
    // Assert
    expect(keys).toEqual([KEY('a')]);
    expect(label).toBe('cached (from session build-7, 2 h old)');
    expect(cachedLabel(undefined, new Date())).toBe('cached');
  });
});
