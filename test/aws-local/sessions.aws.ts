import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sigV4Signer } from '../../functions/cli/aws-signing.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { importImage } from '../../functions/cli/images/import-image.ts';
import { ImagesApi } from '../../functions/cli/images/images-api.ts';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAwsLocal, type AwsLocal } from './aws-local.ts';

const CFS = resolve(import.meta.dirname, '..', '..', 'bin', 'cfs.mjs');

let local: AwsLocal;

beforeAll(async () => {
  local = await startAwsLocal();
});

afterAll(async () => {
  await local?.close();
});

/** Runs the bundled CLI against the front, signing as it signs for API Gateway. */
function cfs(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [CFS, ...argv], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...local.cliEnv } }, (error, out, err) =>
      done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

async function sampleImage(name: string): Promise<{ id: string }> {
  const built = await cfs('images', 'build-sample', '--name', name, '--format', 'json');
  expect(built.err).not.toMatch(/^Error/m);
  expect(built.code).toBe(0);
  return JSON.parse(built.out) as { id: string };
}

async function session(name: string): Promise<SessionRecord> {
  return (await local.api.request<SessionRecord>('GET', `/apis/cfs/v3/sessions/${name}`)).body!;
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen in ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const ended = (s: SessionRecord) => s.status.session.status === 'complete';

const playbook = (dest: string, content: string) => `- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - copy: { dest: ${dest}, content: ${content} }\n`;

async function keysUnder(prefix: string): Promise<string[]> {
  const listed = await local.s3.client.send(new ListObjectsV2Command({ Bucket: local.shape.bucketName, Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key!);
}

function executionOf(name: string) {
  return [...local.aws.executions.values()].find((e) => e.name === name);
}

describe('a session through the deployed shape on this machine', () => {
  it('fails at the failing layer: the runner task exits non-zero, the state fails with States.TaskFailed, FailSession records it and Cleanup runs', async () => {
    // Arrange
    const image = await sampleImage('aws-local-fail-base');
    const ok = local.repo({ 'ok.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - copy: { dest: /etc/ok.txt, content: ok }\n' });
    const broken = local.repo({ 'broken.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - name: break on purpose\n      command: /bin/false\n' });
    await local.api.request('PUT', '/apis/cfs/v3/configurations/aws-local-breaks', {
      body: {
        layers: [
          { name: 'ok', clone_url: ok.url, commit: ok.commit, playbook: 'ok.yml' },
          { name: 'broken', clone_url: broken.url, commit: broken.commit, playbook: 'broken.yml' },
        ],
      },
    });
    // Act
    await local.api.request('POST', '/apis/cfs/v3/sessions', {
      body: { name: 'aws-local-fails', configuration_name: 'aws-local-breaks', target: { definition: 'image', groups: [{ name: 'Compute', members: [image.id] }] } },
    });
    const done = await until('the session to end', () => session('aws-local-fails'), ended);
    const execution = [...local.aws.executions.values()].find((e) => e.name === 'aws-local-fails')!;
    await execution.done;
    // Assert
    expect(done.status.session.succeeded).toBe('false');
    expect(done.status.failure?.step).toBe('ansible');
    expect(done.status.artifacts ?? []).toEqual([]);
    const task = [...local.aws.tasks.values()].find((t) => t.session === 'aws-local-fails')!;
    expect(task.exitCode).toBe(1);
    expect(task.capabilities).toBe('fargate-default');
    expect(task.environment.RUNNER_SANDBOX).toBe('container');
    expect(task.environment.ARTIFACT_BUCKET).toBe(local.shape.bucketName);
    expect(execution.states).toEqual(expect.arrayContaining(['ValidateImages', 'StageImages', 'RenderInventory', 'RunAnsible', 'FailSession', 'Cleanup', 'SessionFailed']));
    expect(execution.states).not.toContain('PackageAndUpload');
    expect(execution.status).toBe('FAILED');
    expect(execution.error).toBe('SessionFailed');
  });

  it('waits for an image that is not registered yet and is woken by its registration (Image Registered, the rule, the trigger, SendTaskSuccess) long before the poll interval', async () => {
    // Arrange: the CLI's own import, held between creating the record and registering it.
    const config = local.repo({ 'site.yml': playbook('/etc/woken.txt', 'woken') });
    await local.api.request('PUT', '/apis/cfs/v3/configurations/aws-local-woken', { body: { layers: [{ name: 'site', clone_url: config.url, commit: config.commit, playbook: 'site.yml' }] } });
    const work = await mkdtemp(join(tmpdir(), 'cfs-aws-local-root-'));
    const root = join(work, 'root');
    await buildSampleRoot(root);
    let parkedAt = 0;
    let registeredAt = 0;
    class HeldImages extends ImagesApi {
      override async registerManifest(id: string, artifacts: Parameters<ImagesApi['registerManifest']>[1]) {
        await local.api.request('POST', '/apis/cfs/v3/sessions', { body: { name: 'aws-local-woken', configuration_name: 'aws-local-woken', target: { definition: 'image', groups: [{ name: 'Compute', members: [id] }] } } });
        await until('the session to park in WaitForImages', async () => local.aws.openTokens().length, (n) => n > 0, 60_000);
        parkedAt = Date.now();
        registeredAt = Date.now();
        return super.registerManifest(id, artifacts);
      }
    }
    // Act
    const image = await importImage(new HeldImages(local.api), { name: 'aws-local-late', arch: 'x86_64', rootfs: root, kernel: join(root, 'boot', 'vmlinuz-sample'), initrd: join(root, 'boot', 'initrd.img-sample') });
    const done = await until('the session to end', () => session('aws-local-woken'), ended);
    await rm(work, { recursive: true, force: true });
    // Assert
    const execution = executionOf('aws-local-woken')!;
    await execution.done;
    expect(done.status.failure).toBeUndefined();
    expect(done.status.session.succeeded).toBe('true');
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.states.slice(0, 5)).toEqual(['ValidateImages', 'AreImagesReady', 'WaitForImages', 'ValidateImages', 'AreImagesReady']);
    const trigger = local.aws.invocations.find((i) => i.source.startsWith('rule TriggerImageRegistered') && JSON.stringify(i.event).includes(image.id));
    expect(trigger?.type).toBe('Event');
    expect(trigger?.error).toBeUndefined();
    const wait = local.aws.invocations.find((i) => i.source === 'WaitForImages (Step Functions)')!;
    expect(wait.event).toMatchObject({ session: 'aws-local-woken', missing: [image.id], poll_seconds: 30 });
    const secondValidation = local.aws.invocations.filter((i) => i.source === 'ValidateImages (Step Functions)')[1]!;
    expect(secondValidation).toBeDefined();
    // Woken by the event, not by the state's 30 s poll timeout.
    expect(parkedAt).toBeGreaterThan(0);
    expect(secondValidation.startedAt - registeredAt).toBeLessThan(15_000);
    expect(done.status.artifacts).toHaveLength(1);
    expect(execution.states).toEqual(expect.arrayContaining(['PackageImage', 'RecordArtifacts', 'Cleanup', 'SessionSucceeded']));
  });

  it('a token the state no longer waits on is refused as TaskTimedOut, a made-up one as InvalidToken', async () => {
    // Arrange: the woken session's token was spent when it woke.
    const wait = local.aws.invocations.find((i) => i.source === 'WaitForImages (Step Functions)')!;
    const spent = (wait.event as { token: string }).token;
    // Act / Assert
    expect(() => local.aws.sendTaskResult(spent, { output: '{}' })).toThrow(expect.objectContaining({ name: 'TaskTimedOut' }));
    expect(() => local.aws.sendTaskResult('not-a-token', { output: '{}' })).toThrow(expect.objectContaining({ name: 'InvalidToken' }));
  });

  it('the API front refuses an unsigned call and a wrongly signed one with 403, and answers a signed one', async () => {
    // Arrange
    const url = new URL(`${local.front.url}/apis/cfs/v3/sessions`);
    const wrong = await sigV4Signer('us-east-1', { accessKeyId: 'S3RVER', secretAccessKey: 'not-the-secret' });
    const right = await sigV4Signer('us-east-1', { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    // Act
    const unsigned = await fetch(url);
    const wronglySigned = await fetch(url, { headers: await wrong({ method: 'GET', url, headers: {} }) });
    const signed = await fetch(url, { headers: await right({ method: 'GET', url, headers: {} }) });
    // Assert
    expect(unsigned.status).toBe(403);
    expect(await unsigned.json()).toEqual({ message: 'Missing Authentication Token' });
    expect(wronglySigned.status).toBe(403);
    expect(((await wronglySigned.json()) as { message: string }).message).toMatch(/signature we calculated does not match/);
    expect(signed.status).toBe(200);
  });

  it('an unknown function is Lambda.ResourceNotFoundException, as Step Functions reports it', async () => {
    // Act
    const failure = await local.aws.invoke('arn:aws:lambda:us-east-1:000000000000:function:Nowhere', {}).catch((error: Error) => error);
    // Assert
    expect((failure as Error).name).toBe('ResourceNotFoundException');
  });

  it('deleting a session while Ansible runs stops the execution; its ABORTED event reaches the clean-up, which stops the runner task and removes its uploads', async () => {
    // Arrange
    const image = await sampleImage('aws-local-stop-base');
    const slow = local.repo({ 'slow.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - command: sleep 600\n' });
    await local.api.request('PUT', '/apis/cfs/v3/configurations/aws-local-slow', { body: { layers: [{ name: 'slow', clone_url: slow.url, commit: slow.commit, playbook: 'slow.yml' }] } });
    await local.api.request('POST', '/apis/cfs/v3/sessions', { body: { name: 'aws-local-stopped', configuration_name: 'aws-local-slow', target: { definition: 'image', groups: [{ name: 'Compute', members: [image.id] }] } } });
    const task = await until('the runner to run Ansible', async () => [...local.aws.tasks.values()].find((t) => t.session === 'aws-local-stopped' && /sleep 600|layer|ansible/i.test(t.output)), Boolean, 120_000);
    const runnerKeysBefore = await keysUnder('runner/');
    // Act
    const deleted = await cfs('sessions', 'delete', 'aws-local-stopped');
    await task!.stopped;
    await local.aws.settled();
    // Assert
    expect(deleted.code).toBe(0);
    const execution = executionOf('aws-local-stopped')!;
    expect(execution.status).toBe('ABORTED');
    const cleanup = local.aws.invocations.find((i) => i.source.startsWith('rule ExecutionCleanupExecutionEnded') && JSON.stringify(i.event).includes('aws-local-stopped'));
    expect(cleanup?.event).toMatchObject({ source: 'aws.states', 'detail-type': 'Step Functions Execution Status Change', detail: { status: 'ABORTED', name: 'aws-local-stopped' } });
    expect(cleanup?.error).toBeUndefined();
    expect(task!.stoppedReason).toBeTruthy();
    expect(task!.exitCode).not.toBe(0);
    expect(runnerKeysBefore.some((k) => k.endsWith('run-document.json'))).toBe(true);
    const runnerKeysAfter = await keysUnder('runner/');
    expect(runnerKeysAfter.filter((k) => k.endsWith('run-document.json') || k.includes('/upload'))).toEqual([]);
  });

  it('an automation is started by Image Registered: the rule invokes the trigger, which starts its session; its schedule went to Scheduler', async () => {
    // Arrange
    const site = local.repo({ 'site.yml': playbook('/etc/automation.txt', 'auto') });
    await local.api.request('PUT', '/apis/cfs/v3/configurations/aws-local-auto', { body: { layers: [{ name: 'site', clone_url: site.url, playbook: 'site.yml', branch: 'main' }] } });
    await local.api.request('PUT', '/apis/cfs/v3/automations/awsauto', {
      body: { configuration_name: 'aws-local-auto', source: { name_pattern: 'awsauto-base-*', arch: 'x86_64' }, groups: ['Compute'], result_name_template: '{source_name}_{automation}', on_image_registered: true, schedule: { expression: 'cron(0 3 * * ? *)', timezone: 'UTC' } },
    });
    // Act
    const source = await sampleImage('awsauto-base-1');
    const execution = await until('the automation session to start', async () => [...local.aws.executions.values()].find((e) => e.name.startsWith('awsauto-')), Boolean, 60_000);
    const done = await until('the automation session to end', () => session(execution!.name), ended);
    // Assert
    expect(done.status.session.succeeded).toBe('true');
    expect(done.tags.automation).toBe('awsauto');
    const trigger = local.aws.invocations.find((i) => i.source.startsWith('rule TriggerImageRegistered') && JSON.stringify(i.event).includes(source.id))!;
    expect(trigger.error).toBeUndefined();
    expect(local.aws.schedulerCalls.find((c) => c.operation === 'CreateSchedule')?.body).toMatchObject({ ScheduleExpression: 'cron(0 3 * * ? *)', Target: { Arn: local.shape.functions.find((f) => f.logicalId.startsWith('TriggerFunction'))!.arn } });
  });
});
