import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ImageTests } from '../../functions/core/workflow/run-document.ts';
import { findRunnerLocations, readRunDocument } from '../../functions/core/workflow/run-document-store.ts';
import { failSession } from '../../functions/steps/fail-session.ts';
import { syncLayerProgress } from '../../functions/steps/layer-progress.ts';
import { packageAndUpload } from '../../functions/steps/package-and-upload.ts';
import { renderInventoryStep } from '../../functions/steps/render-inventory.ts';
import { stageImage } from '../../functions/steps/stage-image.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const C = '33333333-3333-4333-8333-333333333333';

/** What the runner records of an image's test: one check, and a boot test on TCG ending in `boot`. */
function tests(image: string, boot: 'succeeded' | 'failed', check: 'succeeded' | 'failed' = 'succeeded'): ImageTests {
  const logs = `runner/logs/tests/${image}/`;
  return {
    checks: [{ name: 'hello', exit_code: check === 'succeeded' ? 0 : 1, state: check, start_time: '2026-11-26T09:59:00Z', end_time: '2026-11-26T09:59:01Z', duration_ms: 1000, log_key: `${logs}check-hello.log` }],
    ...(check === 'succeeded'
      ? {
          boot: {
            accelerator: 'tcg' as const,
            accelerator_reason: '/dev/kvm is missing',
            state: boot,
            start_time: '2026-11-26T09:59:02Z',
            end_time: '2026-11-26T09:59:40Z',
            duration_ms: 38_000,
            log_key: `${logs}boot-console.log`,
          },
        }
      : {}),
  };
}

describe("the steps that record each image's test", () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  /** Images staged and the inventory rendered (the Ansible step runs), each result uploaded where the runner uploads it. */
  async function rendered(images: string[]) {
    for (const id of images) await registerImage(ports, id, id.slice(0, 1));
    await ports.sessionTable.create(pendingSession('s1', { Compute: images }));
    for (const id of images) await stageImage(ports, { session: 's1', image_id: id });
    await renderInventoryStep(ports, { session: 's1' });
    const document = (await readRunDocument(ports.artifacts, 's1'))!;
    const session = (await ports.sessions.get('s1'))!;
    const results = [];
    for (const id of images) {
      const plan = session.status.plan!.find((p) => p.image_id === id)!;
      const rootfs = await ports.artifacts.put(`${document.images.find((i) => i.image_id === id)!.upload_prefix}rootfs`, `customized ${id}`);
      results.push({ plan, rootfs });
    }
    return results;
  }

  async function writeOutcome(outcome: Record<string, unknown>) {
    await ports.artifacts.put((await findRunnerLocations(ports.artifacts, 's1')).outcome, JSON.stringify({ session: 's1', started: '2026-11-26T09:50:00Z', finished: '2026-11-26T09:59:45Z', layers: [], ...outcome }));
  }

  it("writes the image's passed checks and boot test from the outcome, after the Ansible step and before its package step", async () => {
    // Arrange
    const [a] = await rendered([A]);
    await writeOutcome({ status: 'succeeded', images: [{ image_id: A, result_id: a!.plan.result_id, result_name: a!.plan.result_name, staged: true, customized: true, uploaded: { rootfs: a!.rootfs }, tests: tests(A, 'succeeded') }] });
    // Act
    await packageAndUpload(ports, { session: 's1', image_id: A });
    // Assert
    const steps = (await ports.sessions.get('s1'))!.status.steps!;
    expect(steps.map((s) => [s.name, s.check ?? s.boot ?? s.image_id ?? '', s.state])).toEqual([
      ['stage', A, 'succeeded'],
      ['inventory', '', 'succeeded'],
      ['ansible', '', 'succeeded'],
      ['test', A, 'succeeded'],
      ['test', 'hello', 'succeeded'],
      ['test', 'tcg', 'succeeded'],
      ['package', A, 'succeeded'],
    ]);
    expect(steps.find((s) => s.boot === 'tcg')).toEqual({ name: 'test', image_id: A, boot: 'tcg', state: 'succeeded', start_time: '2026-11-26T09:59:02Z', end_time: '2026-11-26T09:59:40Z', duration_ms: 38_000 });
    expect(steps.find((s) => s.name === 'test' && s.check === undefined && s.boot === undefined)).toMatchObject({ start_time: '2026-11-26T09:59:00Z', end_time: '2026-11-26T09:59:40Z' });
  });

  it('fails the session at test with the image and a one-line reason when its boot test failed, and registers nothing of either image', async () => {
    // Arrange
    const [a, c] = await rendered([A, C]);
    const entry = (r: typeof a, imageTests: ImageTests) => ({ image_id: r!.plan.image_id, result_id: r!.plan.result_id, result_name: r!.plan.result_name, staged: true, customized: true, uploaded: { rootfs: r!.rootfs }, tests: imageTests });
    await writeOutcome({
      status: 'failed',
      failed_step: 'test',
      failed_image: C,
      reason: `image ${C} failed its boot test on tcg: 'READY' did not appear within 300 s; the console ended:\n[  12.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n---[ end Kernel panic ]---`,
      images: [entry(a, tests(A, 'succeeded')), entry(c, tests(C, 'failed'))],
    });
    // Act
    const failure = await failSession(ports, { session: 's1', error: { Error: 'States.TaskFailed', Cause: 'the runner exited with code 6' } });
    // Assert
    expect(failure).toEqual({ step: 'test', image_id: C, reason: `image ${C} failed its boot test on tcg: 'READY' did not appear within 300 s; the console ended: [ 12.1] Kernel panic - not syncing: VFS: Unable to mount root fs ---[ end Kernel panic ]---` });
    const session = (await ports.sessions.get('s1'))!;
    expect(session.status.failure).toEqual(failure);
    expect(session.status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
    expect(session.status.steps?.filter((s) => s.name === 'test').map((s) => [s.image_id, s.check ?? s.boot ?? 'image', s.state])).toEqual([
      [A, 'image', 'succeeded'],
      [A, 'hello', 'succeeded'],
      [A, 'tcg', 'succeeded'],
      [C, 'image', 'failed'],
      [C, 'hello', 'succeeded'],
      [C, 'tcg', 'failed'],
    ]);
    // The layers all ran: only the test failed.
    expect(session.status.steps?.find((s) => s.name === 'ansible' && s.layer === undefined)).toMatchObject({ state: 'succeeded', end_time: '2026-11-26T09:59:45Z' });
    expect(session.status.steps?.some((s) => s.state === 'running')).toBe(false);
    // All or nothing: neither result exists, the runner's uploads are gone, nothing was announced but the failure.
    expect(session.status.artifacts).toEqual([]);
    expect((await ports.images.list({ includePending: true })).map((i) => i.id).sort()).toEqual([A, C]);
    for (const r of [a!, c!]) {
      expect(await ports.artifacts.list(r.plan.upload_prefix)).toEqual([]);
      expect(await ports.artifacts.head(r.rootfs.key)).toBeUndefined();
    }
    expect(ports.published.map((e) => [e.detailType, (e.detail as { succeeded: string }).succeeded])).toEqual([['Session Completed', 'false']]);
  });

  it("keeps the middle out of a long test reason, so the console's last line stays", async () => {
    // Arrange
    const [a] = await rendered([A]);
    const console = Array.from({ length: 40 }, (_, i) => `[ ${i}.0] boot message number ${i}`).join('\n');
    await writeOutcome({
      status: 'failed',
      failed_step: 'test',
      failed_image: A,
      reason: `image ${A} failed its boot test: the console ended:\n${console}\nLAST LINE`,
      images: [{ image_id: A, result_id: a!.plan.result_id, result_name: a!.plan.result_name, staged: true, customized: true, tests: tests(A, 'failed') }],
    });
    // Act
    const failure = await failSession(ports, { session: 's1', error: { Error: 'States.TaskFailed', Cause: 'exit 6' } });
    // Assert
    expect(failure?.reason).toMatch(new RegExp(`^image ${A} failed its boot test: .* … .* LAST LINE$`));
    expect(failure?.reason).not.toContain('\n');
    expect(failure?.reason.length).toBeLessThanOrEqual(400);
  });

  it('fails at test naming the failed check, with no boot entry for an image whose checks stopped it', async () => {
    // Arrange
    const [a] = await rendered([A]);
    await writeOutcome({
      status: 'failed',
      failed_step: 'test',
      failed_image: A,
      reason: `check hello failed in image ${A} (exit code 1): hello: command not found`,
      images: [{ image_id: A, result_id: a!.plan.result_id, result_name: a!.plan.result_name, staged: true, customized: true, tests: tests(A, 'failed', 'failed') }],
    });
    // Act
    const failure = await failSession(ports, { session: 's1', error: { Error: 'States.TaskFailed', Cause: 'exit 6' } });
    // Assert
    expect(failure).toEqual({ step: 'test', image_id: A, reason: `check hello failed in image ${A} (exit code 1): hello: command not found` });
    const steps = (await ports.sessions.get('s1'))!.status.steps!.filter((s) => s.name === 'test');
    expect(steps.map((s) => [s.check ?? s.boot ?? 'image', s.state])).toEqual([
      ['image', 'failed'],
      ['hello', 'failed'],
    ]);
  });

  it('still fails at ansible naming the layer when a layer failed, with no test entries', async () => {
    // Arrange
    await rendered([A]);
    await writeOutcome({ status: 'failed', failed_layer: 'base', reason: 'layer base failed', images: [{ image_id: A, result_id: 'r', result_name: 'r', staged: true, customized: false }] });
    // Act
    const failure = await failSession(ports, { session: 's1', error: { Error: 'States.TaskFailed', Cause: 'exit 1' } });
    // Assert
    expect(failure).toEqual({ step: 'ansible', layer: 'base', reason: 'layer base failed' });
    expect((await ports.sessions.get('s1'))!.status.steps?.some((s) => s.name === 'test')).toBe(false);
  });

  it("copies the runner's live test progress into status.steps with the layers", async () => {
    // Arrange
    await rendered([A]);
    await ports.artifacts.put(
      (await findRunnerLocations(ports.artifacts, 's1')).progress,
      JSON.stringify({
        session: 's1',
        updated: 't',
        layers: [{ index: 0, name: 'base', state: 'succeeded', start_time: '2026-11-26T09:51:00Z', end_time: '2026-11-26T09:58:00Z' }],
        tests: [{ image_id: A, state: 'running', start_time: '2026-11-26T09:59:00Z', checks: [{ name: 'hello', state: 'running', start_time: '2026-11-26T09:59:00Z' }], boot: { state: 'pending' } }],
      }),
    );
    // Act
    await syncLayerProgress(ports, 's1');
    // Assert
    expect((await ports.sessions.get('s1'))!.status.steps!.slice(-3)).toEqual([
      { name: 'ansible', layer: 'base', state: 'succeeded', start_time: '2026-11-26T09:51:00Z', end_time: '2026-11-26T09:58:00Z' },
      { name: 'test', image_id: A, state: 'running', start_time: '2026-11-26T09:59:00Z' },
      { name: 'test', image_id: A, check: 'hello', state: 'running', start_time: '2026-11-26T09:59:00Z' },
    ]);
  });
});
