import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AutomationRecord } from '../../functions/core/automations/automation-record.ts';
import type { AutomationPlan } from '../../functions/core/automations/plan.ts';
import { imageRegisteredEvent } from '../../functions/core/images/image-events.ts';
import type { ImageRecord } from '../../functions/core/model/image.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { cliEnv } from '../helpers/api-token.ts';
import { callApi } from '../helpers/runtime-api.ts';
import { fileInImage } from '../helpers/stored-image.ts';

let runtime: EmbeddedRuntime;
let repo: TempRepo;
let dataDir: string;
let firstCommit: string;

const playbook = (content: string) => `- hosts: Compute:&cfs_image\n  gather_facts: false\n  tasks:\n    - copy: { dest: /etc/automation.txt, content: "${content}\\n" }\n`;

const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(runtime, method, path, body);

async function automationSessions(): Promise<SessionRecord[]> {
  return (await runtime.ports.sessions.list()).filter((s) => s.tags.automation === 'compute');
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen in ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function completed(name: string): Promise<SessionRecord> {
  const session = await until(`session ${name} to complete`, async () => (await runtime.ports.sessions.get(name))!, (s) => s.status.session.status === 'complete', 180_000);
  expect(session.status.failure).toBeUndefined();
  expect(session.status.session.succeeded).toBe('true');
  // Its result's own Image Registered event has been handled too: the results are revealed and
  // announced after the completion is written, so the engine's run ends first, then the bus's deliveries.
  await runtime.engine.idle();
  await runtime.bus.idle();
  return session;
}

beforeAll(async () => {
  ensureBuilt();
  dataDir = mkdtempSync(join(tmpdir(), 'cfs-e2e-automations-'));
  runtime = await startEmbeddedRuntime({ dataDir, port: 0 });
  repo = makeTempRepo();
  firstCommit = repo.commit('main', 'site.yml', playbook('first'));
  expect((await api('PUT', '/apis/cfs/v3/configurations/compute-config', { layers: [{ name: 'site', clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] })).status).toBe(200);
  const put = await api<AutomationRecord>('PUT', '/apis/cfs/v3/automations/compute', {
    configuration_name: 'compute-config',
    source: { name_pattern: 'compute-base-*', arch: 'x86_64' },
    groups: ['Compute'],
    result_name_template: '{source_name}_{automation}',
    on_image_registered: true,
    schedule: { expression: 'cron(0 3 * * ? *)', timezone: 'UTC' },
    only_if_changed: true,
  });
  expect(put.status).toBe(200);
});

afterAll(async () => {
  await runtime?.close();
  repo?.dispose();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('automations on the embedded runtime', () => {
  it('starts exactly one session for a registered matching image, also when the event comes twice, and its result starts none', async () => {
    // Arrange
    const built = await cfsBin(cliEnv(runtime), 'images', 'build-sample', '--name', 'compute-base-1', '--format', 'json');
    expect(built.code).toBe(0);
    const source = JSON.parse(built.out) as ImageRecord;
    // Act
    await runtime.bus.publish(imageRegisteredEvent((await runtime.ports.images.get(source.id))!));
    await runtime.bus.idle();
    const started = await automationSessions();
    const session = await completed(started[0]!.name);
    // Assert
    expect(started).toHaveLength(1);
    expect(started[0]!.name).toMatch(/^compute-[0-9a-f]{12}$/);
    expect(await automationSessions()).toHaveLength(1);
    const result = (await runtime.ports.images.get(session.status.artifacts[0]!.result_id))!;
    expect(result.name).toBe('compute-base-1_compute');
    expect(result.metadata).toMatchObject({ cfs_fingerprint: session.status.plan![0]!.fingerprint, cfs_automation: 'compute', cfs_source_image_id: source.id });
    expect(fileInImage(dataDir, result, 'etc/automation.txt')).toBe('first\n');
    const history = (await api<AutomationRecord>('GET', '/apis/cfs/v3/automations/compute')).body.history;
    // The two deliveries ran concurrently: either may have been recorded first.
    expect(history).toHaveLength(3);
    expect(history[0]!.reason).toContain(`loop guard: image 'compute-base-1_compute' (${result.id}) was made by this automation`);
    expect(history.slice(1).map((h) => h.outcome).sort()).toEqual(['skipped', 'started']);
    expect(history.find((h) => h.outcome === 'skipped' && h.trigger === 'image_registered' && h.session)?.reason).toContain(`already started: session ${session.name}`);
  });

  it('records why a scheduled run with nothing changed starts no session', async () => {
    // Arrange
    const before = (await automationSessions()).length;
    // Act
    runtime.scheduler.tick('compute');
    const automation = await until(
      'a scheduled evaluation',
      async () => (await api<AutomationRecord>('GET', '/apis/cfs/v3/automations/compute')).body,
      (a) => a.history[0]?.trigger === 'schedule',
      10_000,
    );
    // Assert
    expect(automation.history[0]).toMatchObject({ trigger: 'schedule', outcome: 'skipped' });
    expect(automation.history[0]!.reason).toMatch(/^nothing changed: image 'compute-base-1_compute' \([0-9a-f-]{36}\) already carries fingerprint [0-9a-f]{12}$/);
    expect(await automationSessions()).toHaveLength(before);
  });

  it('after a commit to the layer branch, plans naming the layer and both commits, and the next run builds it once', async () => {
    // Arrange
    const secondCommit = repo.commit('main', 'site.yml', playbook('second'));
    // Act
    const plan = (await api<AutomationPlan>('GET', '/apis/cfs/v3/automations/compute/plan')).body;
    const run = (await api<{ outcome: string; session: string }>('POST', '/apis/cfs/v3/automations/compute/run')).body;
    const session = await completed(run.session);
    const after = (await api<AutomationPlan>('GET', '/apis/cfs/v3/automations/compute/plan')).body;
    // Assert
    expect(plan).toMatchObject({ action: 'build', changes: [{ kind: 'layer_commit', layer: 'site', from: firstCommit, to: secondCommit, branch: 'main' }] });
    expect(plan.reasons).toEqual([`layer 'site' moved from commit ${firstCommit.slice(0, 12)} to ${secondCommit.slice(0, 12)} (branch main)`]);
    expect(run).toMatchObject({ outcome: 'started', session: plan.session_name });
    expect(await automationSessions()).toHaveLength(2);
    expect(session.status.layers[0]!.commit).toBe(secondCommit);
    const rebuilt = (await runtime.ports.images.get(session.status.artifacts[0]!.result_id))!;
    expect(rebuilt.metadata?.cfs_fingerprint).toBe(plan.fingerprint);
    expect(fileInImage(dataDir, rebuilt, 'etc/automation.txt')).toBe('second\n');
    expect(after.action).toBe('skip');
    expect(after.reasons[0]).toContain(`nothing changed: image 'compute-base-1_compute' (${rebuilt.id})`);
  });
});
