import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AUTOMATION_TAG, sessionImageFingerprint } from '../../functions/core/automations/fingerprint.ts';
import { handleImageRegistered, planAutomationNow, runAutomations } from '../../functions/core/automations/trigger.ts';
import { planSession } from '../../functions/core/automations/session-plan.ts';
import { findArtifact, readManifest } from '../../functions/core/images/manifest.ts';
import type { ConfigurationRecord } from '../../functions/core/model/configuration.ts';
import type { ImageRecord } from '../../functions/core/model/image.ts';
import { automationFakes, automationRecord, REPO, RUNNER, type AutomationFakes } from './automation-fakes.ts';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

let fakes: AutomationFakes;

function configuration(commit = A): ConfigurationRecord {
  return { name: 'compute-config', last_updated: '2026-11-26T09:00:00Z', layers: [{ name: 'site', clone_url: REPO, playbook: 'site.yml', commit, branch: 'main' }] };
}

/** What package-and-upload registers for a finished automation session: the result with its lineage and fingerprint. */
async function registerResultOf(session: string): Promise<ImageRecord> {
  const s = (await fakes.sessions.get(session))!;
  const source = s.target.groups[0]!.members[0]!;
  const sourceImage = (await fakes.images.get(source))!;
  const rootfs = findArtifact(await readManifest(fakes.artifacts, sourceImage), 'rootfs')!.sha256;
  await fakes.sessions.update(session, (x) => ({ ...x, status: { ...x.status, session: { ...x.status.session, status: 'complete', succeeded: 'true' } } }));
  return fakes.addImage(s.target.image_map[0]!.result_name, {
    created: '2026-11-26T11:00:00Z',
    metadata: {
      cfs_source_image_id: sourceImage.id,
      cfs_session: session,
      cfs_configuration: s.configuration.name,
      cfs_layers: JSON.stringify(s.status.layers),
      cfs_fingerprint: sessionImageFingerprint(s, source, rootfs, RUNNER),
      ...(s.tags.automation ? { cfs_automation: s.tags.automation } : {}),
    },
  });
}

beforeEach(async () => {
  fakes = automationFakes();
  fakes.git.branches.set(`${REPO}#main`, A);
  await fakes.configurations.put(configuration());
  await fakes.automations.create(automationRecord('compute'));
});
afterEach(() => fakes.dispose());

describe('the Image Registered trigger', () => {
  it('starts one session for a matching image, tagged, in the groups, with the templated result name', async () => {
    // Arrange
    const image = await fakes.addImage('compute-base-1');
    // Act
    const { results } = await handleImageRegistered(fakes, { id: image.id });
    // Assert
    expect(results).toMatchObject([{ automation: 'compute', outcome: 'started' }]);
    const session = (await fakes.sessions.list())[0]!;
    expect(fakes.workflow.started).toEqual([session.name]);
    expect(session.name).toMatch(/^compute-[0-9a-f]{12}$/);
    expect(session.tags).toEqual({ [AUTOMATION_TAG]: 'compute' });
    expect(session.target.groups).toEqual([{ name: 'Compute', members: [image.id] }]);
    expect(session.target.image_map).toEqual([{ source_id: image.id, result_name: 'compute-base-1_compute' }]);
    const rootfs = results[0]!.plan!.source!.rootfs_sha256;
    expect(sessionImageFingerprint(session, image.id, rootfs, RUNNER)).toBe(results[0]!.plan!.fingerprint);
    const stored = (await fakes.automations.get('compute'))!;
    expect(stored.history).toMatchObject([{ trigger: 'image_registered', outcome: 'started', session: session.name, source_image_id: image.id }]);
    expect(stored.history[0]!.reason).toContain(`new source image 'compute-base-1' (${image.id}) was registered`);
    expect(stored.last_build).toMatchObject({ session: session.name, layers: [{ name: 'site', commit: A, branch: 'main' }] });
    expect(fakes.git.calls).toBe(0);
  });

  it("gives every session it starts the automation's validation, and none when the automation has none", async () => {
    // Arrange
    const validation = {
      checks: [{ name: 'hello', command: '/usr/bin/hello' }],
      boot: { success_pattern: 'CFS-BOOT-OK', kernel_parameters: 'root=/dev/vda rootfstype=squashfs ro console=ttyS0', timeout_seconds: 300, memory_mib: 1024, network: false },
    };
    await fakes.automations.create(automationRecord('proved', { validation, source: { name_pattern: 'proved-base-*' } }));
    const proved = await fakes.addImage('proved-base-1');
    const plain = await fakes.addImage('compute-base-1');
    // Act
    const first = await handleImageRegistered(fakes, { id: proved.id });
    const second = await handleImageRegistered(fakes, { id: plain.id });
    // Assert
    expect(first.results).toMatchObject([{ automation: 'proved', outcome: 'started' }]);
    expect(second.results).toMatchObject([{ automation: 'compute', outcome: 'started' }]);
    const provedSession = (await fakes.sessions.get(first.results[0]!.session!))!;
    const plainSession = (await fakes.sessions.get(second.results[0]!.session!))!;
    expect(provedSession.validation).toEqual(validation);
    expect(plainSession).not.toHaveProperty('validation');
  });

  it('starts nothing more when the same event is delivered twice', async () => {
    // Arrange
    const image = await fakes.addImage('compute-base-1');
    // Act
    const [first, second] = await Promise.all([handleImageRegistered(fakes, { id: image.id }), handleImageRegistered(fakes, { id: image.id })]);
    const third = await handleImageRegistered(fakes, { id: image.id });
    // Assert
    expect(fakes.workflow.started).toHaveLength(1);
    expect([first.results[0]!.outcome, second.results[0]!.outcome].sort()).toEqual(['skipped', 'started']);
    expect(third.results[0]).toMatchObject({ outcome: 'skipped' });
    expect(third.results[0]!.reason).toContain(`already started: session ${fakes.workflow.started[0]}`);
  });

  it('never triggers on its own results, by their mark or by their session tag, even when the name matches', async () => {
    // Arrange
    const source = await fakes.addImage('compute-base-1');
    await handleImageRegistered(fakes, { id: source.id });
    const result = await registerResultOf(fakes.workflow.started[0]!);
    const unmarked = await fakes.addImage('compute-base-1_compute-old', { metadata: { cfs_session: fakes.workflow.started[0]! } });
    // Act
    const onResult = await handleImageRegistered(fakes, { id: result.id });
    const onUnmarked = await handleImageRegistered(fakes, { id: unmarked.id });
    // Assert
    expect(result.name).toBe('compute-base-1_compute');
    expect(onResult.results).toMatchObject([{ outcome: 'skipped' }]);
    expect(onResult.results[0]!.reason).toContain('loop guard');
    expect(onUnmarked.results[0]!.reason).toContain('loop guard');
    expect(fakes.workflow.started).toHaveLength(1);
  });

  it('takes results of other automations as sources only when asked to, and never one made from its own result', async () => {
    // Arrange
    const chained = { name_pattern: 'compute-base-*', include_automation_results: true };
    await fakes.automations.update('compute', (a) => ({ ...a, source: chained }));
    await fakes.automations.create(automationRecord('chain', { source: chained }));
    const base = await fakes.addImage('compute-base-1');
    const mine = await fakes.addImage('compute-base-1_compute', { metadata: { cfs_automation: 'compute', cfs_source_image_id: base.id } });
    const fromMine = await fakes.addImage('compute-base-1_compute_chain', { metadata: { cfs_automation: 'chain', cfs_source_image_id: mine.id } });
    // Act
    const onMine = await handleImageRegistered(fakes, { id: mine.id });
    const onFromMine = await handleImageRegistered(fakes, { id: fromMine.id });
    // Assert
    const outcome = (r: typeof onMine, name: string) => r.results.find((x) => x.automation === name)!;
    expect(outcome(onMine, 'compute').reason).toContain('loop guard');
    expect(outcome(onMine, 'chain').outcome).toBe('started');
    expect(outcome(onFromMine, 'chain').reason).toContain('loop guard');
    expect(outcome(onFromMine, 'compute').reason).toBe(
      `loop guard: image 'compute-base-1_compute_chain' (${fromMine.id}) was made from 'compute-base-1_compute' (${mine.id}), a result of this automation`,
    );
  });

  it('does not build on another automation whose results match its pattern, so two such automations never feed each other', async () => {
    // Arrange
    await fakes.automations.create(automationRecord('uan', { groups: ['UAN'] }));
    await fakes.addImage('compute-base-1', { created: '2026-11-20T00:00:00Z' });
    const uanResult = await fakes.addImage('compute-base-1_uan', { created: '2026-11-21T00:00:00Z', metadata: { cfs_automation: 'uan' } });
    // Act
    const event = await handleImageRegistered(fakes, { id: uanResult.id });
    const run = await runAutomations(fakes, ['compute'], 'run');
    // Assert
    expect(event.results.find((r) => r.automation === 'compute')!.reason).toContain("was made by automation 'uan'; results of other automations are sources only with source.include_automation_results");
    expect(run.results[0]!.plan!.source!.name).toBe('compute-base-1');
  });

  it('leaves automations alone when the name or arch does not match or events are off', async () => {
    // Arrange
    await fakes.automations.create(automationRecord('off', { on_image_registered: false }));
    const other = await fakes.addImage('uan-base-1');
    const arm = await fakes.addImage('compute-base-arm', { arch: 'aarch64' });
    const matching = await fakes.addImage('compute-base-2');
    // Act
    const results = [await handleImageRegistered(fakes, { id: other.id }), await handleImageRegistered(fakes, { id: arm.id }), await handleImageRegistered(fakes, { id: matching.id })];
    // Assert
    expect(results.map((r) => r.results.map((x) => x.automation))).toEqual([[], [], ['compute']]);
    expect((await fakes.automations.get('off'))!.history).toEqual([]);
  });
});

describe('a scheduled run', () => {
  it('starts nothing when an image already carries the fingerprint, and records why (repeats folded into one entry)', async () => {
    // Arrange
    const source = await fakes.addImage('compute-base-1');
    await handleImageRegistered(fakes, { id: source.id });
    const result = await registerResultOf(fakes.workflow.started[0]!);
    // Act
    const first = await runAutomations(fakes, ['compute'], 'schedule');
    const second = await runAutomations(fakes, ['compute'], 'schedule');
    // Assert
    expect(first.results[0]).toMatchObject({ outcome: 'skipped' });
    expect(first.results[0]!.reason).toContain(`nothing changed: image 'compute-base-1_compute' (${result.id}) already carries fingerprint`);
    expect(second.results[0]!.outcome).toBe('skipped');
    expect(fakes.workflow.started).toHaveLength(1);
    const history = (await fakes.automations.get('compute'))!.history;
    expect(history).toHaveLength(2);
    expect(history[0]).toMatchObject({ trigger: 'schedule', outcome: 'skipped', repeated: 2 });
  });

  it('after the branch moves, stores the new commit in the configuration, starts one session and says which layer moved from which commit', async () => {
    // Arrange
    const source = await fakes.addImage('compute-base-1');
    await handleImageRegistered(fakes, { id: source.id });
    await registerResultOf(fakes.workflow.started[0]!);
    fakes.git.branches.set(`${REPO}#main`, B);
    // Act
    const plan = await planAutomationNow(fakes, 'compute');
    const run = await runAutomations(fakes, ['compute'], 'schedule');
    // Assert
    expect(plan).toMatchObject({ action: 'build', configuration_moved: true, changes: [{ kind: 'layer_commit', layer: 'site', from: A, to: B, branch: 'main' }] });
    expect(plan.reasons).toEqual([`layer 'site' moved from commit ${A.slice(0, 12)} to ${B.slice(0, 12)} (branch main)`]);
    expect(run.results[0]).toMatchObject({ outcome: 'started', session: plan.session_name });
    expect(fakes.workflow.started).toHaveLength(2);
    expect((await fakes.configurations.get('compute-config'))!.layers[0]!.commit).toBe(B);
    expect((await fakes.sessions.get(plan.session_name!))!.status.layers[0]!.commit).toBe(B);
  });

  it('builds from the newest matching image it did not make itself', async () => {
    // Arrange
    await fakes.addImage('compute-base-1', { created: '2026-11-20T00:00:00Z' });
    const newest = await fakes.addImage('compute-base-2', { created: '2026-11-21T00:00:00Z' });
    await fakes.addImage('compute-base-3_compute', { created: '2026-11-22T00:00:00Z', metadata: { cfs_automation: 'compute' } });
    // Act
    const { results } = await runAutomations(fakes, ['compute'], 'run');
    // Assert
    expect(results[0]).toMatchObject({ outcome: 'started', plan: { source: { id: newest.id } } });
    expect(results[0]!.reason).toContain('first build of this automation');
  });

  it('rebuilds under the next name after a failed session with the same inputs, which an event never does', async () => {
    // Arrange
    const source = await fakes.addImage('compute-base-1');
    await handleImageRegistered(fakes, { id: source.id });
    const first = fakes.workflow.started[0]!;
    await fakes.sessions.update(first, (s) => ({ ...s, status: { ...s.status, session: { ...s.status.session, status: 'complete', succeeded: 'false' } } }));
    // Act
    const event = await handleImageRegistered(fakes, { id: source.id });
    const run = await runAutomations(fakes, ['compute'], 'run');
    // Assert
    expect(event.results[0]!.outcome).toBe('skipped');
    expect(run.results[0]).toMatchObject({ outcome: 'started', session: `${first}-2` });
    expect(run.results[0]!.reason).toContain('no image carries fingerprint');
  });

  it('rebuilds although nothing changed when only_if_changed is false', async () => {
    // Arrange
    await fakes.automations.update('compute', (a) => ({ ...a, only_if_changed: false }));
    const source = await fakes.addImage('compute-base-1');
    await handleImageRegistered(fakes, { id: source.id });
    await registerResultOf(fakes.workflow.started[0]!);
    // Act
    const { results } = await runAutomations(fakes, ['compute'], 'schedule');
    // Assert
    expect(results[0]).toMatchObject({ outcome: 'started', session: `${fakes.workflow.started[0]}-2` });
    expect(results[0]!.reason).toContain('only_if_changed is false');
  });

  it('records a failure when the configuration is gone or a branch cannot be resolved, and a skip when no source matches', async () => {
    // Arrange
    await fakes.automations.create(automationRecord('gone', { configuration_name: 'gone' }));
    await fakes.automations.create(automationRecord('nothing', { source: { name_pattern: 'nothing-*' } }));
    await fakes.configurations.put({ ...configuration(), name: 'broken', layers: [{ name: 'x', clone_url: REPO, playbook: 'p.yml', commit: A, branch: 'nope' }] });
    await fakes.automations.create(automationRecord('broken', { configuration_name: 'broken' }));
    // Act
    const { results } = await runAutomations(fakes, ['gone', 'nothing', 'broken', 'missing'], 'schedule');
    // Assert
    expect(results.map((r) => [r.automation, r.outcome])).toEqual([
      ['gone', 'failed'],
      ['nothing', 'skipped'],
      ['broken', 'failed'],
      ['missing', 'failed'],
    ]);
    expect(results[0]!.reason).toBe("configuration 'gone' does not exist");
    expect(results[1]!.reason).toBe("no image matches 'nothing-*' with a registered rootfs");
    expect(results[2]!.reason).toContain("cannot resolve the branches of configuration 'broken': branch 'nope' does not exist");
    expect((await fakes.automations.get('gone'))!.history[0]).toMatchObject({ outcome: 'failed' });
    expect(fakes.workflow.started).toEqual([]);
  });

  it('asks git once per repository and branch however many automations and configurations share them', async () => {
    // Arrange
    const other = 'https://git.example/other.git';
    fakes.git.branches.set(`${other}#main`, B);
    for (let c = 0; c < 10; c++) {
      await fakes.configurations.put({
        name: `config-${c}`,
        last_updated: '',
        layers: [
          { name: 'site', clone_url: REPO, playbook: 'site.yml', commit: A, branch: 'main' },
          { name: 'extra', clone_url: other, playbook: `extra-${c}.yml`, commit: B, branch: 'main' },
        ],
      });
    }
    const names: string[] = [];
    for (let i = 0; i < 30; i++) {
      names.push(`a${i}`);
      await fakes.automations.create(automationRecord(`a${i}`, { configuration_name: `config-${i % 10}`, source: { name_pattern: 'none-*' } }));
    }
    // Act
    const { results, git_calls } = await runAutomations(fakes, names, 'schedule');
    // Assert
    expect(results.every((r) => r.outcome === 'skipped')).toBe(true);
    expect(git_calls).toBe(2);
    expect(fakes.git.calls).toBe(2);
  });
});

describe('plans', () => {
  it('plan writes nothing', async () => {
    // Arrange
    await fakes.addImage('compute-base-1');
    fakes.git.branches.set(`${REPO}#main`, B);
    const before = structuredClone(await fakes.automations.get('compute'));
    // Act
    const plan = await planAutomationNow(fakes, 'compute');
    // Assert
    expect(plan).toMatchObject({ action: 'build', trigger: 'plan', git_calls: 1, result_name: 'compute-base-1_compute' });
    expect(plan.layers).toEqual([{ name: 'site', clone_url: REPO, playbook: 'site.yml', commit: B, branch: 'main', pinned_commit: A }]);
    expect(await fakes.sessions.list()).toEqual([]);
    expect((await fakes.configurations.get('compute-config'))!.layers[0]!.commit).toBe(A);
    expect(await fakes.automations.get('compute')).toEqual(before);
  });

  it('a session plan shows the fingerprint stage-image will record, and what moved since the last result of that image', async () => {
    // Arrange
    const source = await fakes.addImage('compute-base-1');
    const request = {
      name: 'manual',
      configuration_name: 'compute-config',
      target: { definition: 'image', groups: [{ name: 'Compute', members: [source.id] }] },
    };
    const firstPlan = await planSession(fakes, request);
    await handleImageRegistered(fakes, { id: source.id });
    await registerResultOf(fakes.workflow.started[0]!);
    await fakes.configurations.put(configuration(B));
    // Act
    const secondPlan = await planSession(fakes, request);
    // Assert
    expect(firstPlan.images[0]).toMatchObject({ ready: true, result_name: 'compute-base-1_cfs_manual', groups: ['Compute'] });
    expect(firstPlan.images[0]!.reasons[0]).toContain("first build of image 'compute-base-1'");
    expect(firstPlan.images[0]!.fingerprint).toBe((await fakes.images.list()).find((i) => i.metadata?.cfs_fingerprint)!.metadata!.cfs_fingerprint);
    expect(secondPlan.images[0]!.changes).toMatchObject([{ kind: 'layer_commit', layer: 'site', from: A, to: B }]);
    expect(secondPlan.notes).toEqual([`layer 'site': branch main is now at ${A.slice(0, 12)}, but the configuration pins ${B.slice(0, 12)}, which the session runs (\`cfs configurations update compute-config --update-branches\` moves it)`]);
    expect(await fakes.sessions.get('manual')).toBeUndefined();
  });
});

describe('an automation whose session is held for debugging', () => {
  it('skips a second delivery while the hold lasts, saying the session failed and is held until when, and never waits for it', async () => {
    // Arrange: the first session failed in a layer and holds its workspace (running, succeeded none).
    const image = await fakes.addImage('compute-base-1');
    const first = await handleImageRegistered(fakes, { id: image.id });
    const name = first.results[0]!.session!;
    await fakes.sessions.update(name, (s) => ({
      ...s,
      status: {
        ...s.status,
        session: { ...s.status.session, status: 'running', succeeded: 'none' },
        failure: { step: 'ansible', layer: 'site', reason: 'layer 0 failed' },
        debug: { until: '2026-11-26T11:00:00.000Z', workspace: '/w', inventory: '/w/inventory.yaml', images: [], layers: [] },
      },
    }));
    // Act
    const again = await handleImageRegistered(fakes, { id: image.id });
    // Assert
    expect(again.results[0]).toMatchObject({ outcome: 'skipped', session: name });
    expect(again.results[0]!.reason).toContain(`already started: session ${name} (running, failed and held for debugging until 2026-11-26T11:00:00.000Z)`);
    expect(fakes.workflow.started).toEqual([name]);
  });
});
