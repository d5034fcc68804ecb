import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprint, layerInputs } from '../../functions/core/automations/fingerprint.ts';
import { RUNNER_VERSION } from '../../functions/runner/runner-version.ts';
import { packageAndUpload } from '../../functions/steps/package-and-upload.ts';
import { renderInventoryStep } from '../../functions/steps/render-inventory.ts';
import { stageImage } from '../../functions/steps/stage-image.ts';
import { readRunDocument } from '../../functions/core/workflow/run-document-store.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';

describe('the input fingerprint in the workflow steps', () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  it('is recorded per image by stage-image and on the result image beside the lineage, with the automation that started the session', async () => {
    // Arrange
    const image = await registerImage(ports, A, 'compute-base-1');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }, { tags: { automation: 'nightly' } }));
    // Act
    const staged = await stageImage(ports, { session: 's1', image_id: A });
    await renderInventoryStep(ports, { session: 's1' });
    const document = (await readRunDocument(ports.artifacts, 's1'))!;
    const rootfs = await ports.artifacts.put(`${document.images[0]!.upload_prefix}rootfs`, 'customized');
    await ports.artifacts.put(
      document.outcome_key,
      JSON.stringify({ session: 's1', status: 'succeeded', started: 't0', finished: '2026-11-26T10:01:00Z', layers: [], images: [{ image_id: A, result_id: staged.result_id, result_name: staged.result_name, staged: true, customized: true, uploaded: { rootfs } }] }),
    );
    await packageAndUpload(ports, { session: 's1', image_id: A });
    // Assert
    const session = (await ports.sessions.get('s1'))!;
    const expected = fingerprint({
      rootfs_sha256: staged.rootfs.sha256,
      layers: layerInputs(session.status.layers),
      ansible_limit: '',
      ansible_passthrough: '',
      configuration_limit: '',
      groups: ['Compute'],
      runner_version: RUNNER_VERSION,
    });
    expect(image.id).toBe(A);
    expect(session.status.plan![0]!.fingerprint).toBe(expected);
    const result = await ports.images.get(staged.result_id, { includePending: true });
    expect(result?.metadata).toMatchObject({ cfs_fingerprint: expected, cfs_automation: 'nightly', cfs_session: 's1', cfs_source_image_id: A });
  });

  it('leaves no automation mark on the results of a session no automation started', async () => {
    // Arrange
    await registerImage(ports, A, 'compute-base-1');
    await ports.sessionTable.create(pendingSession('s2', { Compute: [A] }));
    const staged = await stageImage(ports, { session: 's2', image_id: A });
    await renderInventoryStep(ports, { session: 's2' });
    const document = (await readRunDocument(ports.artifacts, 's2'))!;
    const rootfs = await ports.artifacts.put(`${document.images[0]!.upload_prefix}rootfs`, 'customized');
    await ports.artifacts.put(
      document.outcome_key,
      JSON.stringify({ session: 's2', status: 'succeeded', started: 't0', finished: '2026-11-26T10:01:00Z', layers: [], images: [{ image_id: A, result_id: staged.result_id, result_name: staged.result_name, staged: true, customized: true, uploaded: { rootfs } }] }),
    );
    // Act
    await packageAndUpload(ports, { session: 's2', image_id: A });
    // Assert
    const metadata = (await ports.images.get(staged.result_id, { includePending: true }))!.metadata!;
    expect(metadata.cfs_fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(metadata).not.toHaveProperty('cfs_automation');
  });
});
