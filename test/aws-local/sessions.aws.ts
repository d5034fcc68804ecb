import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
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
});
