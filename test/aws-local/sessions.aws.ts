import { describe, expect, it } from 'vitest';
import { sigV4Signer } from '../../functions/cli/aws-signing.ts';
import { importImage } from '../../functions/cli/images/import-image.ts';
import { ImagesApi } from '../../functions/cli/images/images-api.ts';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { awsLocalForSuite, ended, playbook, until } from './aws-local.ts';

const local = awsLocalForSuite();

describe('a session through the deployed shape on this machine', () => {
  it('fails at the failing layer: the runner task exits non-zero, the state fails with States.TaskFailed, FailSession records it and Cleanup runs', async () => {
    // Arrange
    const image = await local.sampleImage('aws-local-fail-base');
    await local.configure('aws-local-breaks', [
      { name: 'ok', files: { 'ok.yml': playbook('/etc/ok.txt', 'ok') }, playbook: 'ok.yml' },
      { name: 'broken', files: { 'broken.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - name: break on purpose\n      command: /bin/false\n' }, playbook: 'broken.yml' },
    ]);
    // Act
    await local.createSession('aws-local-fails', 'aws-local-breaks', [image.id]);
    const done = await until('the session to end', () => local.session('aws-local-fails'), ended);
    const execution = local.execution('aws-local-fails')!;
    await execution.done;
    // Assert
    expect(done.status.session.succeeded).toBe('false');
    expect(done.status.failure?.step).toBe('ansible');
    expect(done.status.artifacts ?? []).toEqual([]);
    const task = local.runnerTask('aws-local-fails')!;
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
    await local.configure('aws-local-woken', [{ name: 'site', files: { 'site.yml': playbook('/etc/woken.txt', 'woken') }, playbook: 'site.yml' }]);
    const work = await mkdtemp(join(tmpdir(), 'cfs-aws-local-root-'));
    const root = join(work, 'root');
    await buildSampleRoot(root);
    let parkedAt = 0;
    let registeredAt = 0;
    class HeldImages extends ImagesApi {
      override async registerManifest(id: string, artifacts: Parameters<ImagesApi['registerManifest']>[1]) {
        await local.createSession('aws-local-woken', 'aws-local-woken', [id]);
        await until('the session to park in WaitForImages', async () => local.aws.openTokens().length, (n) => n > 0, 60_000);
        parkedAt = Date.now();
        registeredAt = Date.now();
        return super.registerManifest(id, artifacts);
      }
    }
    // Act
    const image = await importImage(new HeldImages(local.api), { name: 'aws-local-late', arch: 'x86_64', rootfs: root, kernel: join(root, 'boot', 'vmlinuz-sample'), initrd: join(root, 'boot', 'initrd.img-sample') });
    const done = await until('the session to end', () => local.session('aws-local-woken'), ended);
    await rm(work, { recursive: true, force: true });
    // Assert
    const execution = local.execution('aws-local-woken')!;
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

  it('deleting a session while Ansible runs stops the execution; its ABORTED event reaches the clean-up, which stops the runner task with its reason and removes everything under the runner prefix', async () => {
    // Arrange: a layer that outlasts the test, and the runner's log copy in the store while it runs.
    const image = await local.sampleImage('aws-local-stop-base');
    await local.configure('aws-local-slow', [{ name: 'slow', files: { 'slow.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - command: sleep 600\n' }, playbook: 'slow.yml' }]);
    await local.createSession('aws-local-stopped', 'aws-local-slow', [image.id]);
    const task = await until('the runner task to start', async () => local.runnerTask('aws-local-stopped'), Boolean, 120_000);
    const prefix = task!.environment.RUN_DOCUMENT_KEY!.replace(/run-document\.json$/, '');
    const logs = await until("the runner's layer log to be in the store", () => local.keysUnder(`${prefix}logs/`), (keys) => keys.length > 0, 120_000);
    const resultId = (await local.session('aws-local-stopped')).status.plan![0]!.result_id;
    // Act
    const deleted = await local.cfs('sessions', 'delete', 'aws-local-stopped');
    await task!.stopped;
    await local.aws.settled();
    // Assert
    expect(deleted.code).toBe(0);
    expect(prefix).toMatch(/^runner\/[0-9a-f]{32}\/$/);
    expect(logs).toEqual([`${prefix}logs/0-slow.log`]);
    const execution = local.execution('aws-local-stopped')!;
    expect(execution).toMatchObject({ status: 'ABORTED', error: 'SessionCancelledError', cause: "session 'aws-local-stopped' was deleted while it ran" });
    const cleanup = local.aws.invocations.find((i) => i.source.startsWith('rule ExecutionCleanupExecutionEnded') && JSON.stringify(i.event).includes('aws-local-stopped'));
    expect(cleanup?.event).toMatchObject({ source: 'aws.states', 'detail-type': 'Step Functions Execution Status Change', detail: { status: 'ABORTED', name: 'aws-local-stopped' } });
    expect(cleanup?.error).toBeUndefined();
    // The clean-up found the record gone (the API deletes it after StopExecution) and says what it did.
    expect(cleanup?.result).toEqual({ session: 'aws-local-stopped', status: 'ABORTED', stopped_tasks: [task!.taskArn], recorded: 'the session was deleted; its staged uploads were removed' });
    // Only the clean-up's StopTask stops the task here: the reason is the one it derives from the execution's cause.
    expect(task!.stoppedReason).toBe("the workflow was stopped: session 'aws-local-stopped' was deleted while it ran");
    expect(task!.exitCode).not.toBe(0);
    const result = await local.api.request('GET', `/apis/ims/v3/images/${resultId}`).catch((error: { status?: number }) => error);
    expect((result as { status?: number }).status).toBe(404);
    // The runner's log, progress and outcome too: the runner is stopped and nothing reads them any more.
    expect(await local.keysUnder(prefix)).toEqual([]);
  });

  it('an automation is started by Image Registered: the rule invokes the trigger, which starts its session; its schedule went to Scheduler', async () => {
    // Arrange
    const site = local.repo({ 'site.yml': playbook('/etc/automation.txt', 'auto') });
    await local.api.request('PUT', '/apis/cfs/v3/configurations/aws-local-auto', { body: { layers: [{ name: 'site', clone_url: site.url, playbook: 'site.yml', branch: 'main' }] } });
    await local.api.request('PUT', '/apis/cfs/v3/automations/awsauto', {
      body: { configuration_name: 'aws-local-auto', source: { name_pattern: 'awsauto-base-*', arch: 'x86_64' }, groups: ['Compute'], result_name_template: '{source_name}_{automation}', on_image_registered: true, schedule: { expression: 'cron(0 3 * * ? *)', timezone: 'UTC' } },
    });
    // Act
    const source = await local.sampleImage('awsauto-base-1');
    const execution = await until('the automation session to start', async () => [...local.aws.executions.values()].find((e) => e.name.startsWith('awsauto-')), Boolean, 60_000);
    const done = await until('the automation session to end', () => local.session(execution!.name), ended);
    // Assert
    expect(done.status.session.succeeded).toBe('true');
    expect(done.tags.automation).toBe('awsauto');
    const trigger = local.aws.invocations.find((i) => i.source.startsWith('rule TriggerImageRegistered') && JSON.stringify(i.event).includes(source.id))!;
    expect(trigger.error).toBeUndefined();
    expect(local.aws.schedulerCalls.find((c) => c.operation === 'CreateSchedule')?.body).toMatchObject({ ScheduleExpression: 'cron(0 3 * * ? *)', Target: { Arn: local.shape.functions.find((f) => f.logicalId.startsWith('TriggerFunction'))!.arn } });
  });
});
