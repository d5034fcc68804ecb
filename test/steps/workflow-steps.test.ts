import { existsSync } from 'node:fs';
import { stat, utimes, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failSession, reasonOf, settlePendingResults } from '../../functions/steps/fail-session.ts';
import { packageAndUpload } from '../../functions/steps/package-and-upload.ts';
import { recordArtifacts } from '../../functions/steps/record-artifacts.ts';
import { renderInventory, renderInventoryStep } from '../../functions/steps/render-inventory.ts';
import { stageImage } from '../../functions/steps/stage-image.ts';
import { validateImages } from '../../functions/steps/validate-images.ts';
import { findRunnerLocations, readRunDocument } from '../../functions/core/workflow/run-document-store.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const C = '33333333-3333-4333-8333-333333333333';

describe('the control-plane steps', () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  /** Uploads a result where the runner does: under its prefix, as the run document names it (rendered first when there is none). */
  async function uploadResult(sessionName: string, imageId: string, content: string) {
    const plan = (await ports.sessions.get(sessionName))!.status.plan!.find((p) => p.image_id === imageId)!;
    if (!(await readRunDocument(ports.artifacts, sessionName))) await renderInventoryStep(ports, { session: sessionName });
    const runnerPrefix = (await readRunDocument(ports.artifacts, sessionName))!.images.find((i) => i.image_id === imageId)!.upload_prefix;
    const rootfs = await ports.artifacts.put(`${runnerPrefix}rootfs`, content);
    return { plan, rootfs, runnerPrefix };
  }

  async function writeOutcome(sessionName: string, outcome: Record<string, unknown>) {
    await ports.artifacts.put((await findRunnerLocations(ports.artifacts, sessionName)).outcome, JSON.stringify(outcome));
  }

  /** The runner's progress document as it left it (in AWS nothing copies it into the session while it runs). */
  async function writeProgress(sessionName: string, layers: Record<string, unknown>[]) {
    await ports.artifacts.put((await findRunnerLocations(ports.artifacts, sessionName)).progress, JSON.stringify({ session: sessionName, updated: 't', layers }));
  }

  /** Two source images staged and rendered, each result uploaded as the runner does, and its outcome naming both. */
  async function twoResults(sessionName: string) {
    await registerImage(ports, A, 'a');
    await registerImage(ports, C, 'c');
    await ports.sessionTable.create(pendingSession(sessionName, { Compute: [A, C] }));
    await stageImage(ports, { session: sessionName, image_id: A });
    await stageImage(ports, { session: sessionName, image_id: C });
    await renderInventoryStep(ports, { session: sessionName });
    const first = await uploadResult(sessionName, A, 'customized a');
    const second = await uploadResult(sessionName, C, 'customized c');
    const entry = (r: typeof first) => ({ image_id: r.plan.image_id, result_id: r.plan.result_id, result_name: r.plan.result_name, staged: true, customized: true, uploaded: { rootfs: r.rootfs } });
    await writeOutcome(sessionName, { session: sessionName, status: 'succeeded', started: 't0', finished: 't1', layers: [], images: [entry(first), entry(second)] });
    const results = [first, second].map((r) => ({ image_id: r.plan.image_id, result_id: r.plan.result_id }));
    return { first, second, results };
  }

  it('keeps a session pending with a message naming the images not registered yet', async () => {
    // Arrange
    await registerImage(ports, A, 'base');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A, B] }));
    // Act
    const result = await validateImages(ports, { session: 's1' });
    // Assert
    expect(result).toMatchObject({ ready: false, images: [A, B], missing: [B] });
    const session = await ports.sessions.get('s1');
    expect(session?.status.session.status).toBe('pending');
    expect(session?.status.message).toContain(B);
  });

  it('writes nothing when a re-check finds the same images missing, and records a change in them', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A, B] }));
    await validateImages(ports, { session: 's1' });
    const update = ports.sessions.update.bind(ports.sessions);
    let writes = 0;
    ports.sessions.update = (...args) => (writes++, update(...args));
    // Act
    const again = await validateImages(ports, { session: 's1' });
    const writesUnchanged = writes;
    await registerImage(ports, A, 'base');
    const changed = await validateImages(ports, { session: 's1' });
    // Assert
    expect(again.missing).toEqual([A, B]);
    expect(writesUnchanged).toBe(0);
    expect(changed.missing).toEqual([B]);
    expect(writes).toBe(1);
    expect((await ports.sessions.get('s1'))?.status.message).toBe(`waiting for image(s) to be registered with a rootfs: ${B}`);
  });

  it('fails validation with ImageWaitTimeoutError once the wait timeout has passed', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    ports.setNow('2026-11-26T10:10:01Z');
    // Act
    const attempt = validateImages(ports, { session: 's1' });
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'ImageWaitTimeoutError' });
    await expect(attempt).rejects.toThrow(A);
  });

  it('gives the wait state a poll interval of at least a second (and a thousandth of the wait), at most a day, and never past the wait timeout', async () => {
    // Arrange: the session started at 10:00:00 (pendingSession); the wait timeout is 600 s.
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    const settings = ports.settings;
    const withPoll = (imagePollIntervalSeconds: number, imageWaitTimeoutSeconds = 600) => {
      ports.settings = async () => ({ ...(await settings()), imagePollIntervalSeconds, imageWaitTimeoutSeconds });
    };
    // Act
    ports.setNow('2026-11-26T10:00:01Z');
    withPoll(5);
    const usual = await validateImages(ports, { session: 's1' });
    ports.setNow('2026-11-26T10:09:58Z');
    const nearTheEnd = await validateImages(ports, { session: 's1' });
    withPoll(0.2);
    const tiny = await validateImages(ports, { session: 's1' });
    withPoll(1, 7 * 86_400);
    const weekLong = await validateImages(ports, { session: 's1' });
    withPoll(1e10, 1e12);
    const huge = await validateImages(ports, { session: 's1' });
    // Assert: a week's wait polls every 605 s, so it takes at most 1000 passes.
    expect([usual.poll_seconds, nearTheEnd.poll_seconds, tiny.poll_seconds, weekLong.poll_seconds, huge.poll_seconds]).toEqual([5, 2, 1, 605, 86_400]);
  });

  it('pins each image once, naming results by the image map or <source>_cfs_<session>', async () => {
    // Arrange
    await registerImage(ports, A, 'compute-base');
    await registerImage(ports, B, 'uan-base');
    await ports.sessionTable.create(
      pendingSession('s1', { Compute: [A], UAN: [B] }, { target: { definition: 'image', groups: [{ name: 'Compute', members: [A] }, { name: 'UAN', members: [B] }], image_map: [{ source_id: A, result_name: 'compute-new' }] } }),
    );
    // Act
    const first = await stageImage(ports, { session: 's1', image_id: A });
    const again = await stageImage(ports, { session: 's1', image_id: A });
    const second = await stageImage(ports, { session: 's1', image_id: B });
    // Assert
    expect(again).toEqual(first);
    expect(first.result_name).toBe('compute-new');
    expect(second.result_name).toBe('uan-base_cfs_s1');
    expect(first.rootfs.key).toBe(`boot-images/${A}/rootfs`);
    const session = await ports.sessions.get('s1');
    expect(session?.status.plan).toHaveLength(2);
    expect(session?.status.session.status).toBe('running');
  });

  it('renders hosts as the source image IDs, cfs_image with the chroot connection, and only the given groups', async () => {
    // Arrange
    const session = pendingSession('s1', { Compute: [A, B], UAN: [B] });
    // Act
    const inventory = renderInventory(session) as { all: { children: Record<string, { hosts: Record<string, unknown>; vars?: Record<string, unknown> }> } };
    // Assert
    expect(Object.keys(inventory.all.children)).toEqual(['cfs_image', 'Compute', 'UAN']);
    expect(Object.keys(inventory.all.children.cfs_image!.hosts)).toEqual([A, B]);
    expect(inventory.all.children.cfs_image!.vars).toMatchObject({ ansible_connection: 'community.general.chroot', cray_cfs_image: true });
    expect(Object.keys(inventory.all.children.UAN!.hosts)).toEqual([B]);
  });

  it('refuses two images that would get the same result name', async () => {
    // Arrange
    await registerImage(ports, A, 'same');
    await registerImage(ports, B, 'same');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A, B] }));
    await stageImage(ports, { session: 's1', image_id: A });
    await stageImage(ports, { session: 's1', image_id: B });
    // Act
    const attempt = renderInventoryStep(ports, { session: 's1' });
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'ValidationError', field: 'target.image_map' });
  });

  it('writes a run document that limits Ansible to the session images by default, with the runner\'s time budget', async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await stageImage(ports, { session: 's1', image_id: A });
    // Act
    const { document_key } = await renderInventoryStep(ports, { session: 's1' });
    // Assert
    const chunks: Buffer[] = [];
    for await (const c of await ports.artifacts.get(document_key)) chunks.push(c as Buffer);
    const document = JSON.parse(Buffer.concat(chunks).toString());
    expect(document.ansible.limit).toBe(A);
    expect(document.layers).toEqual([{ index: 0, name: 'base', clone_url: 'https://user:secret@git.example/base.git', commit: 'a'.repeat(40), playbook: 'site.yml' }]);
    expect(document.timeout_seconds).toBe((await ports.settings()).runnerTimeoutSeconds);
    // Everything the runner writes lies under one unguessable prefix, its copy of the document included.
    const prefix = /^runner\/[0-9a-f]{32}\//.exec(document_key)![0];
    expect(document_key).toBe(`${prefix}run-document.json`);
    const plan = (await ports.sessions.get('s1'))!.status.plan![0]!;
    expect(document.images[0]).toMatchObject({ image_id: A, upload_prefix: `${prefix}results/${plan.result_id}/` });
    expect(document).toMatchObject({ outcome_key: `${prefix}runner-outcome.json`, progress_key: `${prefix}runner-progress.json`, logs_prefix: `${prefix}logs/` });
    // The control plane keeps the same document where the runner cannot read it.
    expect(await readRunDocument(ports.artifacts, 's1')).toEqual(document);
  });

  it("copies the session's validation into the run document as stored, and writes none for a session without one", async () => {
    // Arrange
    const validation = {
      checks: [{ name: 'hello', command: '/usr/bin/hello' }],
      boot: { success_pattern: 'CFS-BOOT-OK', kernel_parameters: 'root=live:/dev/vda rd.live.image console=ttyS0', timeout_seconds: 120, memory_mib: 1024, network: false },
    };
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('proved', { Compute: [A] }, { validation }));
    await ports.sessionTable.create(pendingSession('plain', { Compute: [A] }));
    await stageImage(ports, { session: 'proved', image_id: A });
    await stageImage(ports, { session: 'plain', image_id: A });
    // Act
    const provedStep = await renderInventoryStep(ports, { session: 'proved' });
    const plainStep = await renderInventoryStep(ports, { session: 'plain' });
    // Assert
    const proved = (await readRunDocument(ports.artifacts, 'proved'))!;
    const plain = (await readRunDocument(ports.artifacts, 'plain'))!;
    expect(proved.validation).toEqual(validation);
    expect(plain).not.toHaveProperty('validation');
    // The proof's time comes on top of the layers' budget: one check at its 300 s limit, one boot of 120 s, 30 s for the accelerator probe.
    expect(provedStep.timeout_seconds - plainStep.timeout_seconds).toBe(300 + 120 + 30);
    expect(proved.timeout_seconds).toBe(provedStep.timeout_seconds);
    // The runner reads its own copy: it carries the same validation.
    const runnerCopy = (await findRunnerLocations(ports.artifacts, 'proved')).prefix + 'run-document.json';
    const chunks: Buffer[] = [];
    for await (const c of await ports.artifacts.get(runnerCopy)) chunks.push(c as Buffer);
    expect(JSON.parse(Buffer.concat(chunks).toString()).validation).toEqual(validation);
  });

  it('refuses a boot test for an aarch64 image before any runner starts, and takes its checks', async () => {
    // Arrange
    const boot = { success_pattern: 'up', kernel_parameters: 'root=/dev/vda', timeout_seconds: 60, memory_mib: 1024, network: false };
    const checks = [{ name: 'hello', command: 'true' }];
    await registerImage(ports, A, 'a');
    await ports.images.update(A, (image) => ({ ...image, arch: 'aarch64' }));
    await ports.sessionTable.create(pendingSession('booted', { Compute: [A] }, { validation: { checks, boot } }));
    await ports.sessionTable.create(pendingSession('checked', { Compute: [A] }, { validation: { checks } }));
    await stageImage(ports, { session: 'booted', image_id: A });
    await stageImage(ports, { session: 'checked', image_id: A });
    // Act
    const refused = renderInventoryStep(ports, { session: 'booted' });
    // Assert
    await expect(refused).rejects.toMatchObject({ name: 'ValidationError', field: 'validation.boot', message: expect.stringContaining(`image ${A} is aarch64: the boot test boots x86_64 images only`) });
    expect(await readRunDocument(ports.artifacts, 'booted')).toBeUndefined();
    await renderInventoryStep(ports, { session: 'checked' });
    expect((await readRunDocument(ports.artifacts, 'checked'))!.validation).toEqual({ checks });
  });

  it('starts a fresh runner prefix when rendered again and removes what the earlier one held', async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await stageImage(ports, { session: 's1', image_id: A });
    const first = await renderInventoryStep(ports, { session: 's1' });
    const firstPrefix = first.document_key.replace(/run-document\.json$/, '');
    await ports.artifacts.put(`${firstPrefix}runner-outcome.json`, '{"stale":true}');
    // Act
    const second = await renderInventoryStep(ports, { session: 's1' });
    // Assert
    expect(second.document_key).not.toBe(first.document_key);
    expect(await ports.artifacts.list(firstPrefix)).toEqual([]);
    expect((await findRunnerLocations(ports.artifacts, 's1')).prefix).toBe(second.document_key.replace(/run-document\.json$/, ''));
  });

  it('registers a verified result with its lineage, the source kernel as fallback, and without credentials', async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await stageImage(ports, { session: 's1', image_id: A });
    const { plan, rootfs, runnerPrefix } = await uploadResult('s1', A, 'customized rootfs');
    await writeOutcome('s1', { session: 's1', status: 'succeeded', started: 't0', finished: '2026-11-26T10:01:00Z', layers: [], images: [{ image_id: A, result_id: plan.result_id, result_name: plan.result_name, staged: true, customized: true, uploaded: { rootfs } }] });
    // Act
    const result = await packageAndUpload(ports, { session: 's1', image_id: A });
    // Assert
    expect(result).toEqual({ image_id: A, result_id: plan.result_id });
    const image = await ports.images.get(plan.result_id, { includePending: true });
    expect(image?.pending_session).toBe('s1');
    expect(image?.name).toBe('a_cfs_s1');
    expect(image?.metadata?.cfs_source_image_id).toBe(A);
    expect(image?.metadata?.cfs_layers).toContain('https://git.example/base.git');
    expect(image?.metadata?.cfs_layers).not.toContain('secret');
    const manifestChunks: Buffer[] = [];
    for await (const c of await ports.artifacts.get(`boot-images/${plan.result_id}/manifest.json`)) manifestChunks.push(c as Buffer);
    const manifest = JSON.parse(Buffer.concat(manifestChunks).toString());
    expect(manifest.artifacts.map((a: { link: { path: string } }) => a.link.path)).toEqual([`s3://${plan.upload_prefix}rootfs`, `s3://boot-images/${A}/kernel`]);
    // Promoted out of the runner's reach: the result's key holds the bytes, the runner's prefix nothing.
    expect(await ports.artifacts.list(runnerPrefix)).toEqual([]);
    expect(await ports.artifacts.head(`${plan.upload_prefix}rootfs`)).toMatchObject({ size: 'customized rootfs'.length });
    // Prepared, not shown: the session has not completed.
    expect(await ports.images.get(plan.result_id)).toBeUndefined();
    expect((await ports.images.list()).map((i) => i.id)).toEqual([A]);
    expect(ports.published).toEqual([]);
  });

  it('registers nothing when the runner names an upload outside its own result prefix', async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await stageImage(ports, { session: 's1', image_id: A });
    const { plan } = await uploadResult('s1', A, 'customized rootfs');
    const elsewhere = await ports.artifacts.put(`boot-images/${A}/kernel-copy`, 'someone else');
    await writeOutcome('s1', { session: 's1', status: 'succeeded', started: 't0', finished: 't1', layers: [], images: [{ image_id: A, result_id: plan.result_id, result_name: plan.result_name, staged: true, customized: true, uploaded: { rootfs: elsewhere } }] });
    // Act
    const attempt = packageAndUpload(ports, { session: 's1', image_id: A });
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'IntegrityError', message: expect.stringContaining('outside its result prefix') });
    expect(await ports.images.get(plan.result_id, { includePending: true })).toBeUndefined();
    expect(await ports.artifacts.head(`boot-images/${A}/kernel-copy`)).toBeDefined();
  });

  it('registers nothing when the uploaded bytes differ from what the runner recorded', async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await stageImage(ports, { session: 's1', image_id: A });
    const { plan, rootfs } = await uploadResult('s1', A, 'customized rootfs');
    await ports.artifacts.put(rootfs.key, 'customized rootfX');
    await writeOutcome('s1', { session: 's1', status: 'succeeded', started: 't0', finished: 't1', layers: [], images: [{ image_id: A, result_id: plan.result_id, result_name: plan.result_name, staged: true, customized: true, uploaded: { rootfs } }] });
    // Act
    const attempt = packageAndUpload(ports, { session: 's1', image_id: A });
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'IntegrityError' });
    expect(await ports.images.get(plan.result_id, { includePending: true })).toBeUndefined();
  });

  it("takes the store's write-time checksums for a result instead of reading its bytes again when they match the runner's record", async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await stageImage(ports, { session: 's1', image_id: A });
    const { plan, rootfs } = await uploadResult('s1', A, 'customized rootfs');
    await writeOutcome('s1', { session: 's1', status: 'succeeded', started: 't0', finished: 't1', layers: [], images: [{ image_id: A, result_id: plan.result_id, result_name: plan.result_name, staged: true, customized: true, uploaded: { rootfs } }] });
    const reads: string[] = [];
    const get = ports.artifacts.get.bind(ports.artifacts);
    ports.artifacts.get = async (key) => {
      reads.push(key);
      return get(key);
    };
    // Act
    await packageAndUpload(ports, { session: 's1', image_id: A });
    // Assert
    expect(await ports.images.get(plan.result_id, { includePending: true })).toBeDefined();
    expect(reads).not.toContain(rootfs.key);
  });

  it("reads back and refuses a result changed behind the store after it was written, even with the runner's size and the file's mtime kept", async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await stageImage(ports, { session: 's1', image_id: A });
    const { plan, rootfs } = await uploadResult('s1', A, 'customized rootfs');
    await writeOutcome('s1', { session: 's1', status: 'succeeded', started: 't0', finished: 't1', layers: [], images: [{ image_id: A, result_id: plan.result_id, result_name: plan.result_name, staged: true, customized: true, uploaded: { rootfs } }] });
    const path = ports.artifacts.pathOf(rootfs.key);
    const { atime, mtime } = await stat(path);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(path, 'customized rootfX');
    await utimes(path, atime, mtime);
    // Act
    const attempt = packageAndUpload(ports, { session: 's1', image_id: A });
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'IntegrityError', message: expect.stringContaining('md5') });
    expect(await ports.images.get(plan.result_id, { includePending: true })).toBeUndefined();
  });

  it('records the artifacts and completes the session as succeeded, with each layer as the runner last reported it', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await ports.imageTable.create({ id: B, name: 'a_cfs_s1', created: 't', arch: 'x86_64', metadata: { cfs_session: 's1' }, pending_session: 's1' });
    // The runner's last progress write (layer 1 ending) was lost: it is best-effort.
    await writeProgress('s1', [
      { index: 0, name: 'base', state: 'succeeded', start_time: '2026-11-26T09:58:00Z', end_time: '2026-11-26T09:59:00Z' },
      { index: 1, name: 'site', state: 'running', start_time: '2026-11-26T09:59:00Z' },
    ]);
    // Act
    await recordArtifacts(ports, { session: 's1', results: [{ image_id: A, result_id: B }] });
    await recordArtifacts(ports, { session: 's1', results: [{ image_id: A, result_id: B }] });
    // Assert
    const session = await ports.sessions.get('s1');
    expect(session?.status.artifacts).toEqual([{ image_id: A, result_id: B, type: 'ims_customized_image' }]);
    expect(session?.status.session).toMatchObject({ status: 'complete', succeeded: 'true', completion_time: '2026-11-26T10:00:00.000Z' });
    expect(ports.published.map((e) => e.detailType)).toEqual(['Image Registered', 'Session Completed']);
    expect(ports.published.at(-1)).toMatchObject({ detailType: 'Session Completed', detail: { name: 's1', succeeded: 'true' } });
    expect(await ports.images.get(B)).toMatchObject({ id: B, rootfs_registered: '2026-11-26T10:00:00.000Z' });
    expect((await ports.images.get(B))?.pending_session).toBeUndefined();
    expect(session?.status.steps?.filter((s) => s.layer !== undefined)).toEqual([
      { name: 'ansible', layer: 'base', state: 'succeeded', start_time: '2026-11-26T09:58:00Z', end_time: '2026-11-26T09:59:00Z' },
      { name: 'ansible', layer: 'site', state: 'succeeded', start_time: '2026-11-26T09:59:00Z', end_time: '2026-11-26T10:00:00.000Z' },
    ]);
  });

  it('fails a session with the runner-named layer, deregisters its results and removes its uploads', async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    await stageImage(ports, { session: 's1', image_id: A });
    await renderInventoryStep(ports, { session: 's1' });
    const { plan, runnerPrefix } = await uploadResult('s1', A, 'half-made');
    await ports.artifacts.put(`${plan.upload_prefix}rootfs`, 'promoted before the failure');
    // What a runner killed while moving its result into the store leaves: the temporary name beside the key.
    const leftBehind = `${ports.artifacts.pathOf(`${runnerPrefix}rootfs`)}.0f1e2d3c.partial`;
    await writeFile(leftBehind, 'half-moved');
    await writeOutcome('s1', { session: 's1', status: 'failed', reason: 'layer base failed: task "break" failed\nmore', failed_layer: 'base', started: 't0', finished: 't1', layers: [], images: [] });
    await writeProgress('s1', [{ index: 0, name: 'base', state: 'failed', start_time: '2026-11-26T09:58:00Z', end_time: '2026-11-26T09:59:00Z' }]);
    // Act
    const failure = await failSession(ports, { session: 's1', error: { Error: 'States.TaskFailed', Cause: '{"StoppedReason":"Essential container in task exited"}' } });
    // Assert
    expect(failure).toEqual({ step: 'ansible', layer: 'base', reason: 'layer base failed: task "break" failed' });
    const session = await ports.sessions.get('s1');
    expect(session?.status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
    expect(session?.status.failure?.layer).toBe('base');
    expect(session?.status.steps?.find((s) => s.name === 'ansible')?.state).toBe('failed');
    expect(session?.status.steps?.find((s) => s.layer === 'base')).toEqual({ name: 'ansible', layer: 'base', state: 'failed', start_time: '2026-11-26T09:58:00Z', end_time: '2026-11-26T09:59:00Z' });
    expect(await ports.artifacts.list(plan.upload_prefix)).toEqual([]);
    expect(await ports.artifacts.list(runnerPrefix)).toEqual([]);
    expect(existsSync(leftBehind)).toBe(false);
    expect(await ports.artifacts.list(`boot-images/${A}/`)).toHaveLength(3);
  });

  it('leaves a completed session and its result images alone when the failure path runs late', async () => {
    // Arrange
    await registerImage(ports, A, 'a');
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    const plan = await stageImage(ports, { session: 's1', image_id: A });
    await ports.imageTable.create({ id: plan.result_id, name: plan.result_name, created: 't', arch: 'x86_64', pending_session: 's1' });
    await recordArtifacts(ports, { session: 's1', results: [{ image_id: A, result_id: plan.result_id }] });
    // Act
    await failSession(ports, { session: 's1', reason: 'late' });
    // Assert
    expect((await ports.sessions.get('s1'))?.status.session.succeeded).toBe('true');
    expect(await ports.images.get(plan.result_id)).toBeDefined();
  });

  it("shows nothing of a session whose second image fails verification: the first result stays hidden and unannounced, and the failure path removes it", async () => {
    // Arrange
    const { first, second } = await twoResults('s1');
    await ports.artifacts.put(second.rootfs.key, 'customized X');
    // Act
    await packageAndUpload(ports, { session: 's1', image_id: A });
    const whilePrepared = { get: await ports.images.get(first.plan.result_id), list: (await ports.images.list()).map((i) => i.id) };
    const attempt = packageAndUpload(ports, { session: 's1', image_id: C });
    await expect(attempt).rejects.toMatchObject({ name: 'IntegrityError' });
    const failure = await failSession(ports, { session: 's1', error: { Error: 'IntegrityError', Cause: 'md5 differs' } });
    // Assert
    expect(failure).toMatchObject({ step: 'package', image_id: C });
    expect(whilePrepared).toEqual({ get: undefined, list: [A, C] });
    expect(await ports.images.get(first.plan.result_id, { includePending: true })).toBeUndefined();
    expect(await ports.artifacts.list(first.plan.upload_prefix)).toEqual([]);
    expect(ports.published.map((e) => e.detailType)).toEqual(['Session Completed']);
    expect(ports.published[0]?.detail).toMatchObject({ succeeded: 'false' });
  });

  it('refuses to complete a session while one of its images has no prepared result, and shows none of them', async () => {
    // Arrange
    const { first, second } = await twoResults('s1');
    await packageAndUpload(ports, { session: 's1', image_id: A });
    // Act
    const attempt = recordArtifacts(ports, { session: 's1', results: [{ image_id: A, result_id: first.plan.result_id }] });
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'IntegrityError', message: expect.stringContaining(second.plan.result_id) });
    expect((await ports.sessions.get('s1'))?.status.session.status).not.toBe('complete');
    expect(await ports.images.get(first.plan.result_id)).toBeUndefined();
    expect(ports.published).toEqual([]);
  });

  it('shows and announces every result of a session in the step that completes it, once', async () => {
    // Arrange
    const { results } = await twoResults('s1');
    await packageAndUpload(ports, { session: 's1', image_id: A });
    await packageAndUpload(ports, { session: 's1', image_id: C });
    const beforeCompletion = (await ports.images.list()).map((i) => i.id);
    // Act
    await recordArtifacts(ports, { session: 's1', results });
    await recordArtifacts(ports, { session: 's1', results });
    // Assert
    expect(beforeCompletion).toEqual([A, C]);
    expect((await ports.images.list()).map((i) => i.id).sort()).toEqual([A, C, ...results.map((r) => r.result_id)].sort());
    expect(ports.published.map((e) => [e.detailType, e.detail.id ?? e.detail.name])).toEqual([
      ['Image Registered', results[0]!.result_id],
      ['Image Registered', results[1]!.result_id],
      ['Session Completed', 's1'],
    ]);
  });

  it("finishes showing a committed session's results in the failure path when announcing failed after the completion write", async () => {
    // Arrange
    const { results } = await twoResults('s1');
    await packageAndUpload(ports, { session: 's1', image_id: A });
    await packageAndUpload(ports, { session: 's1', image_id: C });
    const publish = ports.events.publish.bind(ports.events);
    let failures = 1;
    ports.events = {
      publish: async (event) => {
        if (failures-- > 0) throw new Error('event bus unavailable');
        await publish(event);
      },
    };
    await expect(recordArtifacts(ports, { session: 's1', results })).rejects.toThrow('event bus unavailable');
    // Act
    const failure = await failSession(ports, { session: 's1', error: { Error: 'Error', Cause: 'event bus unavailable' } });
    // Assert
    expect(failure).toBeUndefined();
    expect((await ports.sessions.get('s1'))?.status.session).toMatchObject({ status: 'complete', succeeded: 'true' });
    for (const r of results) expect(await ports.images.get(r.result_id)).toMatchObject({ rootfs_registered: expect.any(String) });
    expect(ports.published.map((e) => e.detailType)).toEqual(['Image Registered', 'Image Registered', 'Session Completed']);
  });

  it("settles results a killed process left pending: a committed session's are shown, a failed or deleted one's removed, a running one's left", async () => {
    // Arrange
    const committed = pendingSession('done', { Compute: [A] });
    committed.status.session = { status: 'complete', succeeded: 'true', start_time: 't0', completion_time: 't1' };
    committed.status.artifacts = [{ image_id: A, result_id: B, type: 'ims_customized_image' }];
    await ports.sessionTable.create(committed);
    await ports.sessionTable.create({ ...pendingSession('busy', { Compute: [A] }), status: { ...pendingSession('busy', {}).status, session: { status: 'running', succeeded: 'none', start_time: 't0' } } });
    const R2 = '44444444-4444-4444-8444-444444444444';
    const R3 = '55555555-5555-4555-8555-555555555555';
    const record = (id: string, session: string) => ({ id, name: id, created: 't', arch: 'x86_64' as const, metadata: { cfs_session: session }, pending_session: session });
    await ports.imageTable.create(record(B, 'done'));
    await ports.imageTable.create(record(R2, 'deleted'));
    await ports.imageTable.create(record(R3, 'busy'));
    await ports.artifacts.put(`boot-images/${R2}/rootfs`, 'orphan');
    // Act
    await settlePendingResults(ports);
    // Assert
    expect(await ports.images.get(B)).toMatchObject({ id: B, rootfs_registered: expect.any(String) });
    expect(await ports.images.get(R2, { includePending: true })).toBeUndefined();
    expect(await ports.artifacts.list(`boot-images/${R2}/`)).toEqual([]);
    expect(await ports.images.get(R3, { includePending: true })).toMatchObject({ pending_session: 'busy' });
    expect(ports.published.map((e) => e.detailType)).toEqual(['Image Registered', 'Session Completed']);
  });

  it('records nothing and does not throw when the session is deleted while the failure path runs', async () => {
    // Arrange
    await ports.sessionTable.create(pendingSession('s1', { Compute: [A] }));
    const update = ports.sessionTable.update.bind(ports.sessionTable);
    ports.sessionTable.update = async (id, change) => {
      await ports.sessionTable.delete(id);
      return update(id, change);
    };
    // Act
    const failure = await failSession(ports, { session: 's1', reason: 'deleted' });
    // Assert
    expect(failure).toBeUndefined();
    expect(ports.published).toEqual([]);
  });

  it('reads the message out of a Lambda error cause and keeps it to one line', () => {
    expect(reasonOf({ Error: 'IntegrityError', Cause: JSON.stringify({ errorType: 'IntegrityError', errorMessage: 'sha256 mismatch\nstack' }) })).toBe('sha256 mismatch');
    expect(reasonOf({ Error: 'X', Cause: 'plain text' })).toBe('plain text');
  });
});
