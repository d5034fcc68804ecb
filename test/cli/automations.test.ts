import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImage } from '../../functions/core/images/create-image.ts';
import { ROOTFS_TYPE } from '../../functions/core/model/image.ts';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import type { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';

describe('cfs automations and cfs sessions plan', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  let workflow: FakeWorkflow;
  let repo: TempRepo;
  let imageId: string;
  const file = (name: string, body: unknown) => {
    const path = join(data.dir, name);
    writeFileSync(path, JSON.stringify(body));
    return path;
  };

  beforeAll(async () => {
    data = tempDataDir();
    ({ runtime, workflow } = await startServer(data.dir));
    repo = makeTempRepo();
    repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
    await cfs(runtime, 'configurations', 'update', 'compute-config', '--file', file('config.json', { layers: [{ name: 'site', clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] }));
    // A registered image: a manifest with a rootfs digest (plans read no bytes).
    const manifest = { version: '1.0', created: '2026-11-26T00:00:00Z', artifacts: [{ link: { path: 's3://boot-images/x/rootfs', type: 's3' }, type: ROOTFS_TYPE, md5: '0'.repeat(32), sha256: createHash('sha256').update('rootfs').digest('hex'), size: 6 }] };
    await runtime.ports.artifacts.put('boot-images/manifests/compute-base-1.json', JSON.stringify(manifest));
    imageId = (await createImage(runtime.ports, { name: 'compute-base-1', link: { path: 's3://boot-images/manifests/compute-base-1.json', type: 's3' } })).id;
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
    repo.dispose();
  });

  const automation = {
    configuration_name: 'compute-config',
    source: { name_pattern: 'compute-base-*', arch: 'x86_64' },
    groups: ['Compute'],
    schedule: { expression: 'cron(0 3 * * ? *)', timezone: 'UTC' },
  };

  it('updates an automation from a file and refuses a bad one with the API detail', async () => {
    // Arrange
    const good = file('automation.json', automation);
    const bad = file('bad.json', { ...automation, result_name_template: '{nope}' });
    // Act
    const updated = await cfs(runtime, 'automations', 'update', 'compute', '--file', good);
    const refused = await cfs(runtime, 'automations', 'update', 'compute', '--file', bad);
    // Assert
    expect(updated.code).toBe(0);
    expect(updated.out).toContain('Automation compute');
    expect(updated.out).toContain('triggers       schedule cron(0 3 * * ? *) UTC');
    expect(runtime.scheduler.armedNames()).toEqual(['compute']);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain("Error: Bad Request: result_name_template: unknown placeholder '{nope}'");
  });

  it('plans (saying why), runs, and shows the run in describe and list', async () => {
    // Arrange
    await cfs(runtime, 'automations', 'update', 'compute', '--file', file('automation.json', automation));
    // Act
    const plan = await cfs(runtime, 'automations', 'plan', 'compute');
    const run = await cfs(runtime, 'automations', 'run', 'compute', '--format', 'json');
    const describe = await cfs(runtime, 'automations', 'describe', 'compute');
    const list = await cfs(runtime, 'automations', 'list');
    // Assert
    expect(plan.code).toBe(0);
    expect(plan.out).toContain('Automation compute: would build');
    expect(plan.out).toContain(`source         'compute-base-1' (${imageId})`);
    expect(plan.out).toMatch(/fingerprint {4}[0-9a-f]{64}/);
    expect(plan.out).toContain('- first build of this automation');
    const result = JSON.parse(run.out);
    expect(result).toMatchObject({ outcome: 'started', trigger: 'run' });
    expect(workflow.started).toEqual([result.session]);
    expect(describe.out).toMatch(new RegExp(`run +started ${result.session}: first build of this automation`));
    expect(list.out.split('\n')[0]).toMatch(/^NAME\s+CONFIGURATION\s+SOURCE\s+TRIGGERS\s+LAST$/);
    expect(list.out).toContain('compute-config');
  });

  it('plans a session from the same options as create, creating nothing', async () => {
    // Arrange / Act
    const plan = await cfs(runtime, 'sessions', 'plan', '--name', 'manual', '--configuration-name', 'compute-config', '--target-group', 'Compute', imageId);
    // Assert
    expect(plan.code).toBe(0);
    expect(plan.out).toContain('Session manual (plan; nothing was created)');
    expect(plan.out).toContain('result       compute-base-1_cfs_manual');
    expect(plan.out).toMatch(/fingerprint {2}[0-9a-f]{64}/);
    expect(await runtime.ports.sessions.get('manual')).toBeUndefined();
  });

  it('takes validation in automation.json, shows it, refuses a bad one naming the field, and runs sessions that carry it', async () => {
    // Arrange
    const validation = { checks: [{ name: 'hello', command: '/usr/bin/hello' }], boot: { success_pattern: 'CFS-BOOT-OK' } };
    const good = file('proved.json', { ...automation, validation });
    const bad = file('proved-bad.json', { ...automation, validation: { ...validation, boot: { success_pattern: 'x', timeout_seconds: 5 } } });
    // Act
    const updated = await cfs(runtime, 'automations', 'update', 'proved', '--file', good);
    const refused = await cfs(runtime, 'automations', 'update', 'proved', '--file', bad);
    const run = await cfs(runtime, 'automations', 'run', 'proved', '--format', 'json');
    // Assert
    expect(updated.code).toBe(0);
    expect(updated.out).toContain('validation     checks hello; boot until /CFS-BOOT-OK/ (300s)');
    expect(refused.code).toBe(2);
    expect(refused.err).toBe('Error: Bad Request: validation.boot.timeout_seconds: must be from 10 to 3600\n');
    const result = JSON.parse(run.out);
    expect(result.outcome).toBe('started');
    expect((await runtime.ports.sessions.get(result.session))!.validation).toMatchObject({ ...validation, boot: { ...validation.boot, timeout_seconds: 300 } });
  });

  it('deletes an automation and disarms its schedule', async () => {
    // Arrange
    await cfs(runtime, 'automations', 'update', 'gone', '--file', file('gone.json', automation));
    // Act
    const deleted = await cfs(runtime, 'automations', 'delete', 'gone');
    const again = await cfs(runtime, 'automations', 'describe', 'gone');
    // Assert
    expect(deleted.out).toBe('Deleted automation gone.\n');
    expect(runtime.scheduler.armedNames()).not.toContain('gone');
    expect(again.code).toBe(2);
    expect(again.err).toContain("automation 'gone' does not exist");
  });
});
