import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { awsLocalForSuite, ended, until } from './aws-local.ts';

// The other capacity: a privileged runner task on EC2 hosts, the runner's namespace sandbox inside it.
const local = awsLocalForSuite({ 'cfs:runnerCapacity': 'ec2' });

// Writes the change, and the user namespace's id map as the layer saw it (a container's is the identity map).
const site = `- hosts: cfs_image
  gather_facts: false
  tasks:
    - copy: { dest: /etc/namespace.txt, content: namespace }
    - shell: cat /proc/self/uid_map > /etc/uid_map.txt
`;

/** A file inside a squashfs image, read with unsquashfs. */
function fileInSquashfs(image: string, path: string): string {
  return execFileSync('unsquashfs', ['-cat', image, path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('a session through the deployed shape with EC2 capacity', () => {
  it('runs its layer in the namespace sandbox of a privileged runner task and registers a result that holds the change', async () => {
    // Arrange
    const image = await local.sampleImage('aws-local-ec2-base');
    await local.configure('aws-local-ec2', [{ name: 'site', files: { 'site.yml': site }, playbook: 'site.yml' }]);
    const work = await mkdtemp(join(tmpdir(), 'cfs-aws-local-ec2-'));
    const downloaded = join(work, 'result.squashfs');
    // Act
    await local.createSession('aws-local-ec2', 'aws-local-ec2', [image.id]);
    const done = await until('the session to end', () => local.session('aws-local-ec2'), ended);
    const execution = local.execution('aws-local-ec2')!;
    await execution.done;
    const result = done.status.artifacts[0];
    const download = result ? await local.cfs('images', 'download', result.result_id, '-o', downloaded) : undefined;
    const namespaceFile = download?.code === 0 ? fileInSquashfs(downloaded, 'etc/namespace.txt') : undefined;
    const uidMap = download?.code === 0 ? fileInSquashfs(downloaded, 'etc/uid_map.txt') : undefined;
    await rm(work, { recursive: true, force: true });
    // Assert
    expect(local.shape.taskDefinition).toMatchObject({ privileged: true, requiresCompatibilities: ['EC2'] });
    const task = local.runnerTask('aws-local-ec2')!;
    expect(task.environment.RUNNER_SANDBOX).toBe('namespace');
    // Started as on an EC2 host: privileged, so node itself with every capability (no setpriv before it).
    expect(task.capabilities).toBe('privileged');
    expect(task.process.spawnfile).toBe(process.execPath);
    expect(task.output).toMatch(/sandbox: image ids 0-65535 run as host ids \d+-\d+ \(uid\)/);
    expect(task.exitCode).toBe(0);
    expect(done.status.failure).toBeUndefined();
    expect(done.status.session.succeeded).toBe('true');
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.states).toEqual(expect.arrayContaining(['RunAnsible', 'PackageImage', 'RecordArtifacts', 'SessionSucceeded']));
    expect(result).toMatchObject({ image_id: image.id, type: 'ims_customized_image' });
    // Fetched through the API's presigned URL, checked against the manifest's digest.
    expect(download?.code).toBe(0);
    expect(download?.err).toMatch(new RegExp(`^rootfs of ${result!.result_id}: \\d+ bytes, sha256 [0-9a-f]{64} verified`));
    expect(namespaceFile).toBe('namespace');
    // Image root was a subordinate id on the host: the layer ran in the runner's user namespace.
    expect(uidMap).toMatch(/^\s*0\s+[1-9]\d*\s+65536\s*$/);
  });
});
