import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupState } from '../../functions/handlers/cleanup.ts';
import { failSessionState } from '../../functions/handlers/fail-session.ts';
import { packageImageState } from '../../functions/handlers/package-and-upload.ts';
import { recordArtifactState } from '../../functions/handlers/record-artifact.ts';
import { renderInventoryState } from '../../functions/handlers/render-inventory.ts';
import { logger, stepHandler } from '../../functions/handlers/shared/step-handler.ts';
import { stageImageState } from '../../functions/handlers/stage-image.ts';
import { validateImageState } from '../../functions/handlers/validate-image.ts';
import { waitForImagesState } from '../../functions/handlers/wait-for-images.ts';
import type { ImageWait } from '../../functions/steps/wait-for-images.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';

// The handlers log every step; the assertions here say what matters.
logger.setLogLevel('SILENT');

describe('the step handlers (each maps its state input and its errors as the ASL expects)', () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  const on = <D extends { state: string }>(definition: D) => stepHandler({ ...(definition as never as Parameters<typeof stepHandler>[0]), ports: () => ports });

  it('ValidateImages returns {ready, images, missing, poll_seconds} for AreImagesReady and WaitForImages', async () => {
    // Arrange
    await registerImage(ports, A, 'base');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A, B] }));
    // Act
    const output = await on(validateImageState)({ session: 's1' });
    // Assert
    expect(output).toEqual({ ready: false, images: [A, B], missing: [B], poll_seconds: 5 });
  });

  it('ValidateImages fails with ImageWaitTimeoutError (caught to FailSession) past the image wait timeout', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    ports.setNow('2026-11-26T11:00:00Z');
    // Act
    const validating = on(validateImageState)({ session: 's1' });
    // Assert
    await expect(validating).rejects.toMatchObject({ name: 'ImageWaitTimeoutError' });
  });

  it('refuses an input that lacks what the state passes with a ValidationError naming the field (never retried)', async () => {
    // Act
    const results = await Promise.all([
      on(validateImageState)({}).catch((e: Error) => e),
      on(stageImageState)({ session: 's1' }).catch((e: Error) => e),
      on(recordArtifactState)({ session: 's1', results: [{ image_id: A }] }).catch((e: Error) => e),
      on(waitForImagesState)({ session: 's1', missing: [A], poll_seconds: 5 }).catch((e: Error) => e),
    ]);
    // Assert
    expect(results.map((e) => [(e as Error).name, (e as { field?: string }).field])).toEqual([
      ['ValidationError', 'session'],
      ['ValidationError', 'image_id'],
      ['ValidationError', 'results.0.result_id'],
      ['ValidationError', 'token'],
    ]);
  });

  it('StageImage and RenderInventory hand RunAnsible the run document key', async () => {
    // Arrange
    await registerImage(ports, A, 'base');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    // Act
    const staged = (await on(stageImageState)({ session: 's1', image_id: A })) as { result_name: string };
    const run = await on(renderInventoryState)({ session: 's1' });
    // Assert
    expect(staged.result_name).toBe('base_cfs_s1');
    // The runner's copy under its unguessable prefix; the control plane keeps its own.
    expect(run).toEqual({ document_key: expect.stringMatching(/^runner\/[0-9a-f]{32}\/run-document\.json$/), timeout_seconds: (await ports.settings()).runnerTimeoutSeconds });
    expect(await ports.artifacts.head((run as { document_key: string }).document_key)).toBeDefined();
    expect(await ports.artifacts.head('sessions/s1/run-document.json')).toBeDefined();
  });

  it('PackageImage fails with RunnerFailedError when the runner recorded no result', async () => {
    // Arrange
    await registerImage(ports, A, 'base');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await on(stageImageState)({ session: 's1', image_id: A });
    // Act
    const packaging = on(packageImageState)({ session: 's1', image_id: A });
    // Assert
    await expect(packaging).rejects.toMatchObject({ name: 'RunnerFailedError' });
  });

  it('RecordArtifacts records the results and returns an empty object (its ResultPath is null)', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await ports.imageTable.create({ id: 'r-1', name: 'a_cfs_s1', created: 't', arch: 'x86_64', metadata: { cfs_session: 's1' }, pending_session: 's1' });
    // Act
    const output = await on(recordArtifactState)({ session: 's1', results: [{ image_id: A, result_id: 'r-1' }] });
    // Assert
    expect(output).toEqual({});
    expect((await ports.sessions.get('s1'))?.status.artifacts).toEqual([{ image_id: A, result_id: 'r-1', type: 'ims_customized_image' }]);
    expect((await ports.images.get('r-1'))?.pending_session).toBeUndefined();
  });

  it('FailSession takes the Lambda error Cause (JSON) as the reason and tolerates a null Cause', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await ports.sessionTable.create(pendingSession('s2', { Compute: [A] }));
    const cause = JSON.stringify({ errorType: 'ValidationError', errorMessage: 'two images would get the same result name', trace: [] });
    // Act
    const failure = await on(failSessionState)({ session: 's1', error: { Error: 'ValidationError', Cause: cause } });
    const lenient = await on(failSessionState)({ session: 's2', error: { Error: 'States.Timeout', Cause: null } });
    // Assert
    expect(failure).toEqual({ step: 'validate', reason: 'two images would get the same result name' });
    expect(lenient).toMatchObject({ reason: 'States.Timeout' });
    expect((await ports.sessions.get('s1'))?.status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
  });

  it("Cleanup removes the runner's copy of the run document and its unpromoted uploads, keeps the logs, and returns an empty object", async () => {
    // Arrange
    await registerImage(ports, A, 'base');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await on(stageImageState)({ session: 's1', image_id: A });
    const { document_key } = (await on(renderInventoryState)({ session: 's1' })) as { document_key: string };
    const prefix = document_key.replace(/run-document\.json$/, '');
    await ports.artifacts.put(`${prefix}results/x/rootfs`, 'never promoted');
    await ports.artifacts.put(`${prefix}logs/0-base.log`, 'the layer log');
    // Act
    const output = await on(cleanupState)({ session: 's1' });
    // Assert
    expect(output).toEqual({});
    expect(await ports.artifacts.list(prefix)).toEqual([`${prefix}logs/0-base.log`]);
    expect(await ports.artifacts.head('sessions/s1/run-document.json')).toBeDefined();
  });

  describe('WaitForImages', () => {
    function waitPorts() {
      const recorded: ImageWait[] = [];
      const woken: string[] = [];
      return {
        recorded,
        woken,
        ports: { images: ports.images, artifacts: ports.artifacts, clock: ports.clock, waits: { put: async (w: ImageWait) => void recorded.push(w) }, wake: async (s: string) => (woken.push(s), true) },
      };
    }

    it('records the task token with the missing images and returns without waking', async () => {
      // Arrange
      const fake = waitPorts();
      // Act
      const output = await stepHandler({ ...waitForImagesState, ports: () => fake.ports })({ session: 's1', missing: [B], poll_seconds: 5, token: 'tok' });
      // Assert
      expect(output).toEqual({ woken: false });
      expect(fake.recorded).toEqual([{ session: 's1', token: 'tok', missing: [B], recorded_at: '2026-11-26T10:00:00.000Z', expires_at: Date.parse('2026-11-29T10:00:00Z') / 1000 }]);
      expect(fake.woken).toEqual([]);
    });

    it('wakes itself when a missing image was registered before the token was recorded', async () => {
      // Arrange
      const fake = waitPorts();
      await registerImage(ports, B, 'late');
      // Act
      const output = await stepHandler({ ...waitForImagesState, ports: () => fake.ports })({ session: 's1', missing: [B], poll_seconds: 5, token: 'tok' });
      // Assert
      expect(output).toEqual({ woken: true });
      expect(fake.woken).toEqual(['s1']);
    });
  });
});
