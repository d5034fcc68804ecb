import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../functions/api/app.ts';
import type { AutomationRecord } from '../../functions/core/automations/automation-record.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { MemoryOptions } from '../helpers/cfs-fakes.ts';
import { automationFakes, REPO, type AutomationFakes } from '../core/automation-fakes.ts';
import { call } from './cfs-app.ts';

const A = 'a'.repeat(40);
const example = {
  configuration_name: 'compute-config',
  source: { name_pattern: 'compute-base-*', arch: 'x86_64' },
  groups: ['Compute'],
  result_name_template: '{source_name}_{automation}',
  on_image_registered: true,
  schedule: { expression: 'cron(0 3 * * ? *)', timezone: 'UTC' },
  only_if_changed: true,
};

let fakes: AutomationFakes;
let ports: AppPorts;
const armed: string[] = [];

beforeEach(async () => {
  fakes = automationFakes();
  fakes.git.branches.set(`${REPO}#main`, A);
  await fakes.configurations.put({ name: 'compute-config', last_updated: '', layers: [{ name: 'site', clone_url: REPO, playbook: 'site.yml', commit: A, branch: 'main' }] });
  armed.length = 0;
  ports = {
    ...fakes,
    events: { publish: async () => undefined },
    options: new MemoryOptions(),
    automationSchedules: { armed: async (a: AutomationRecord) => void armed.push(a.name), disarmed: async (name: string) => void armed.push(`-${name}`) },
  };
});
afterEach(() => fakes.dispose());

describe('the automations API', () => {
  it('stores the issue example, shows it with its next run, lists it, and deletes it', async () => {
    // Arrange
    const app = createApp(ports);
    // Act
    const put = await call(app, 'PUT', '/apis/cfs/v3/automations/compute', example);
    const got = await call(app, 'GET', '/apis/cfs/v3/automations/compute');
    const listed = await call(app, 'GET', '/apis/cfs/v3/automations');
    const deleted = await call(app, 'DELETE', '/apis/cfs/v3/automations/compute');
    const gone = await call(app, 'GET', '/apis/cfs/v3/automations/compute');
    // Assert
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ name: 'compute', ...example, only_if_changed: true, ansible_passthrough: '', history: [], next_run: '2026-11-27T03:00:00.000Z' });
    expect(got.body).toEqual(put.body);
    expect(listed.body.automations.map((a: AutomationRecord) => a.name)).toEqual(['compute']);
    expect(deleted.status).toBe(204);
    expect(gone.status).toBe(404);
    expect(gone.body.detail).toBe("automation 'compute' does not exist");
    expect(armed).toEqual(['compute', '-compute']);
  });

  it.each([
    ['an unknown configuration', { ...example, configuration_name: 'nope' }, "configuration_name: configuration 'nope' does not exist"],
    ['a bad pattern', { ...example, source: { name_pattern: 'compute-[' } }, 'source.name_pattern: not a glob pattern'],
    ['a bad expression', { ...example, schedule: { expression: 'cron(0 3 * * * *)' } }, "exactly one of day-of-month and day-of-week must be '?'"],
    ['an unknown placeholder', { ...example, result_name_template: '{source}' }, "result_name_template: unknown placeholder '{source}'"],
  ])('answers 400 problem+json for %s', async (_what, body, detail) => {
    // Arrange
    const app = createApp(ports);
    // Act
    const response = await call(app, 'PUT', '/apis/cfs/v3/automations/compute', body);
    // Assert
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.body.detail).toContain(detail);
  });

  it('stores and shows a validation with its defaults, and answers 400 naming the field of a bad one', async () => {
    // Arrange
    const app = createApp(ports);
    const validation = { checks: [{ name: 'hello', command: 'hello' }], boot: { success_pattern: 'CFS-BOOT-OK', memory_mib: 2048 } };
    // Act
    const put = await call(app, 'PUT', '/apis/cfs/v3/automations/compute', { ...example, validation });
    const got = await call(app, 'GET', '/apis/cfs/v3/automations/compute');
    const bad = await call(app, 'PUT', '/apis/cfs/v3/automations/compute', { ...example, validation: { boot: { success_pattern: '(' } } });
    const dropped = await call(app, 'PUT', '/apis/cfs/v3/automations/compute', example);
    // Assert
    expect(put.status).toBe(200);
    expect(got.body.validation).toEqual({
      checks: [{ name: 'hello', command: 'hello' }],
      boot: { success_pattern: 'CFS-BOOT-OK', kernel_parameters: 'root=/dev/vda rootfstype=squashfs ro console=ttyS0', timeout_seconds: 300, memory_mib: 2048, network: false },
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe('application/problem+json');
    expect(bad.body.field).toBe('validation.boot.success_pattern');
    expect(bad.body.detail).toMatch(/^validation\.boot\.success_pattern: is not a valid regular expression/);
    // A PUT replaces the whole automation: without `validation` its sessions are no longer checked.
    expect(dropped.body).not.toHaveProperty('validation');
  });

  it('plans without writing and runs as a schedule tick would', async () => {
    // Arrange
    const app = createApp(ports);
    await call(app, 'PUT', '/apis/cfs/v3/automations/compute', example);
    const image = await fakes.addImage('compute-base-1');
    // Act
    const plan = await call(app, 'GET', '/apis/cfs/v3/automations/compute/plan');
    const sessionsAfterPlan = (await fakes.sessions.list()).length;
    const run = await call(app, 'POST', '/apis/cfs/v3/automations/compute/run');
    const again = await call(app, 'POST', '/apis/cfs/v3/automations/compute/run');
    // Assert
    expect(plan.status).toBe(200);
    expect(plan.body).toMatchObject({ action: 'build', source: { id: image.id }, result_name: 'compute-base-1_compute', git_calls: 1 });
    expect(plan.body.session_name).toMatch(/^compute-[0-9a-f]{12}$/);
    expect(sessionsAfterPlan).toBe(0);
    expect(run.body).toMatchObject({ automation: 'compute', trigger: 'run', outcome: 'started', session: plan.body.session_name, git_calls: 1 });
    expect(again.body).toMatchObject({ outcome: 'skipped' });
    expect(again.body.reason).toContain(`already started: session ${plan.body.session_name}`);
    expect(fakes.workflow.started).toEqual([plan.body.session_name]);
  });

  it('answers 404 for the plan or run of an unknown automation and 405 for other methods', async () => {
    // Arrange
    const app = createApp(ports);
    // Act
    const plan = await call(app, 'GET', '/apis/cfs/v3/automations/nope/plan');
    const run = await call(app, 'POST', '/apis/cfs/v3/automations/nope/run');
    const patch = await call(app, 'PATCH', '/apis/cfs/v3/automations/nope', {});
    // Assert
    expect([plan.status, run.status, patch.status]).toEqual([404, 404, 405]);
    expect(patch.headers.get('allow')).toBe('GET, PUT, DELETE, HEAD');
  });

  it('answers 501 where the deployment provides no automation store', async () => {
    // Arrange
    const { automations: _none, ...without } = ports;
    const app = createApp(without as AppPorts);
    // Act
    const response = await call(app, 'GET', '/apis/cfs/v3/automations');
    // Assert
    expect(response.status).toBe(501);
  });
});

describe('the session plan API', () => {
  it('plans a session body without creating it, and refuses a bad one as create would', async () => {
    // Arrange
    const app = createApp(ports);
    const image = await fakes.addImage('compute-base-1');
    const body = { name: 'manual', configuration_name: 'compute-config', target: { definition: 'image', groups: [{ name: 'Compute', members: [image.id] }] } };
    // Act
    const plan = await call(app, 'POST', '/apis/cfs/v3/sessions/plan', body);
    const bad = await call(app, 'POST', '/apis/cfs/v3/sessions/plan', { ...body, target: { definition: 'dynamic' } });
    // Assert
    expect(plan.status).toBe(200);
    expect(plan.body).toMatchObject({ session: 'manual', configuration: 'compute-config', layers: [{ name: 'site', commit: A }], images: [{ image_id: image.id, ready: true, result_name: 'compute-base-1_cfs_manual' }] });
    expect(plan.body.images[0].fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toContain('target.definition');
    expect(await fakes.sessions.list()).toEqual([]);
  });
});
