import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { get, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';
import { deleteSession } from '../../functions/core/sessions/session-use-cases.ts';
import { runnerKeys, sessionKeys } from '../../functions/core/workflow/session-keys.ts';
import { cleanup } from '../../functions/steps/cleanup.ts';
import { MemorySessions } from '../helpers/cfs-fakes.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';

const MiB = 1024 * 1024;
let server: LocalS3;
let directory: string;
let client: S3Client;
let store: S3ArtifactStore;
/** The commands the client sent, by name (to see the multipart upload happen). */
const sent: string[] = [];

/** Deterministic bytes made on demand; `failAfter` breaks the stream like a dropped client. */
function generated(totalBytes: number, failAfter?: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && sent >= failAfter) return this.destroy(new Error('connection dropped'));
      if (sent >= totalBytes) return this.push(null);
      const chunk = Buffer.alloc(Math.min(MiB, totalBytes - sent), sent % 253);
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

async function digest(stream: Readable): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 's3rver-'));
  server = await startLocalS3(directory, ['boot-images', 'cfs-artifacts']);
  client = server.client;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push(context.commandName as string);
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  store = new S3ArtifactStore(client, { partSize: 5 * MiB, queueSize: 2 });
});
afterAll(async () => {
  await server.close();
  await rm(directory, { recursive: true, force: true });
});

describe('S3ArtifactStore against a local S3-protocol server', () => {
  it('writes, heads, lists, reads and deletes a small object', async () => {
    // Act
    const stored = await store.put('boot-images/small/manifest.json', '{"version":"1.0"}', { contentType: 'application/json' });
    // Assert
    expect(stored).toMatchObject({ size: 17, md5: createHash('md5').update('{"version":"1.0"}').digest('hex') });
    expect(await store.head('boot-images/small/manifest.json')).toEqual({ size: 17, etag: stored.md5 });
    expect(await store.list('boot-images/small/')).toEqual(['boot-images/small/manifest.json']);
    expect((await digest(await store.get('boot-images/small/manifest.json'))).size).toBe(17);
    await store.delete('boot-images/small/manifest.json');
    expect(await store.head('boot-images/small/manifest.json')).toBeUndefined();
    await expect(store.get('boot-images/small/manifest.json')).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('streams an object larger than one part through a multipart upload, measuring it in the same pass', async () => {
    // Arrange
    const size = 12 * MiB + 123;
    const expected = await digest(generated(size));
    sent.length = 0;
    // Act
    const stored = await store.put('boot-images/large/rootfs', generated(size));
    // Assert
    expect(stored.size).toBe(size);
    expect(stored.sha256).toBe(expected.sha256);
    expect(sent.filter((name) => name === 'UploadPartCommand')).toHaveLength(3);
    expect(sent).toContain('CompleteMultipartUploadCommand');
    expect((await store.head('boot-images/large/rootfs'))?.size).toBe(size);
    expect(await digest(await store.get('boot-images/large/rootfs'))).toEqual(expected);
  });

  it('leaves no object when the source breaks after the first part was sent', async () => {
    // Act
    const attempt = store.put('boot-images/interrupted/rootfs', generated(20 * MiB, 11 * MiB));
    // Assert
    await expect(attempt).rejects.toThrow('connection dropped');
    expect(await store.head('boot-images/interrupted/rootfs')).toBeUndefined();
    expect(await store.list('boot-images/interrupted/')).toEqual([]);
  });

  it('hands out presigned URLs that accept a streamed PUT and serve it back', async () => {
    // Arrange
    const size = 3 * MiB;
    const expected = await digest(generated(size));
    const upload = new URL(await store.uploadUrl('boot-images/presigned/rootfs', 300));
    // Act
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(upload, { method: 'PUT', headers: { 'Content-Length': String(size) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      pipeline(generated(size), req).catch(reject);
    });
    const downloaded = await new Promise<{ size: number; sha256: string }>((resolve, reject) => {
      void store.downloadUrl('boot-images/presigned/rootfs', 300).then((url) => get(url, (res) => resolve(digest(res))).on('error', reject));
    });
    // Assert
    expect(status).toBe(200);
    expect(downloaded).toEqual(expected);
  });

  it('promotes a staged upload by copy, answering the md5 S3 gives the copy as ETag, and a PUT through the old upload URL afterwards leaves the final key alone', async () => {
    // Arrange
    const staged = await store.put('boot-images/p/uploads/rootfs', 'registered bytes');
    const oldUrl = await store.uploadUrl('boot-images/p/uploads/rootfs', 60);
    // Act
    const promoted = await store.promote('boot-images/p/uploads/rootfs', 'boot-images/p/rootfs');
    const late = await fetch(oldUrl, { method: 'PUT', body: 'late bytes' });
    // Assert
    expect(promoted).toMatchObject({ key: 'boot-images/p/rootfs', size: staged.size, etag: staged.md5, md5: staged.md5 });
    expect(late.status).toBe(200);
    expect(await digest(await store.get('boot-images/p/rootfs'))).toEqual({ size: staged.size, sha256: staged.sha256 });
    expect(await store.promote('boot-images/p/none', 'boot-images/p/kernel')).toBeUndefined();
  });

  it('lists an empty prefix as nothing and refuses a key without a bucket', async () => {
    // Act / Assert
    expect(await store.list('boot-images/none/')).toEqual([]);
    await expect(store.put('no-bucket', 'x')).rejects.toMatchObject({ name: 'ValidationError' });
  });
});

describe('S3ArtifactStore in one bucket (a deployment: bucket names are global)', () => {
  it('keeps each store key whole as the object key, and lists, reads and presigns by store key', async () => {
    // Arrange
    const single = new S3ArtifactStore(client, { bucket: 'cfs-artifacts' });
    // Act
    const stored = await single.put('boot-images/one/rootfs', 'in one bucket');
    const direct = await store.head('cfs-artifacts/boot-images/one/rootfs');
    const fetched = await fetch(await single.downloadUrl('boot-images/one/rootfs', 60));
    // Assert
    expect(stored.size).toBe(13);
    expect(direct).toEqual({ size: 13, etag: stored.md5 });
    expect(await single.list('boot-images/one/')).toEqual(['boot-images/one/rootfs']);
    expect(await single.list('boot-images')).toEqual(['boot-images/one/rootfs']);
    expect(await fetched.text()).toBe('in one bucket');
    await single.delete('boot-images/one/rootfs');
    expect(await single.head('boot-images/one/rootfs')).toBeUndefined();
  });
});

describe('S3ArtifactStore removing a prefix', () => {
  it('deletes every object under a prefix page by page with DeleteObjects, and nothing beside it', async () => {
    // Arrange: 25 objects in one bucket, listed and deleted 10 at a time; a neighbour whose name extends the prefix.
    const single = new S3ArtifactStore(client, { bucket: 'cfs-artifacts', deleteBatchSize: 10 });
    for (let i = 0; i < 25; i++) await single.put(`sessions/gone/logs/${String(i).padStart(2, '0')}-layer.log`, `log ${i}`);
    await single.put('sessions/gone-too/run-document.json', '{}');
    await single.put('sessions/kept/run-document.json', '{}');
    const before = sent.length;
    // Act
    const removed = await single.deletePrefix('sessions/gone/');
    // Assert
    const commands = sent.slice(before);
    expect(removed).toBe(25);
    expect(commands.filter((c) => c === 'DeleteObjectsCommand')).toHaveLength(3);
    expect(commands).not.toContain('DeleteObjectCommand');
    expect(await single.list('sessions/gone/')).toEqual([]);
    expect(await single.list('sessions/')).toEqual(['sessions/gone-too/run-document.json', 'sessions/kept/run-document.json']);
    expect(await single.deletePrefix('sessions/gone/')).toBe(0);
    await expect(single.deletePrefix('sessions/kept')).rejects.toMatchObject({ name: 'ValidationError' });
  });

  it('lists objects with the time each was written', async () => {
    // Arrange
    const before = Date.now() - 2_000;
    await store.put('boot-images/dated/rootfs', 'dated');
    // Act
    const listed = await store.listModified('boot-images/dated/');
    // Assert: S3 keeps seconds.
    expect(listed.map((o) => o.key)).toEqual(['boot-images/dated/rootfs']);
    expect(listed[0]!.modified.getTime()).toBeGreaterThanOrEqual(before);
    expect(listed[0]!.modified.getTime()).toBeLessThanOrEqual(Date.now() + 2_000);
  });

  it('fails naming the first key S3 refused to delete', async () => {
    // Arrange
    const mock = mockClient(S3Client);
    mock.on(ListObjectsCommand).resolves({ Contents: [{ Key: 'sessions/x/a' }, { Key: 'sessions/x/b' }], IsTruncated: false });
    mock.on(DeleteObjectsCommand).resolves({ Errors: [{ Key: 'sessions/x/b', Code: 'AccessDenied', Message: 'Access Denied' }] });
    const mocked = new S3ArtifactStore(new S3Client({ region: 'us-east-1' }), { bucket: 'cfs-artifacts' });
    // Act
    const failed = mocked.deletePrefix('sessions/x/');
    // Assert
    await expect(failed).rejects.toThrow('the artifact store refused to delete 1 object(s) under sessions/x/, first sessions/x/b: AccessDenied Access Denied');
    expect(mock.commandCalls(DeleteObjectsCommand)[0]?.args[0].input).toEqual({
      Bucket: 'cfs-artifacts',
      Delete: { Objects: [{ Key: 'sessions/x/a' }, { Key: 'sessions/x/b' }], Quiet: true },
    });
    mock.restore();
  });
});

describe('deleting a session from S3 (the API Lambda and the execution-ended clean-up)', () => {
  it("removes an ended session's documents, logs and runner prefix, and a deleted running session's once its clean-up runs", async () => {
    // Arrange: two sessions' run documents, outcomes and logs in one bucket, as a deployment keeps them.
    const single = new S3ArtifactStore(client, { bucket: 'cfs-artifacts', deleteBatchSize: 2 });
    const sessions = new MemorySessions();
    const workflow = { start: async () => 'job', stop: async () => undefined };
    const runners = { ended: runnerKeys('1'.repeat(32)), stopped: runnerKeys('2'.repeat(32)) };
    for (const [name, runner] of Object.entries(runners)) {
      const record = pendingSession(name, { Compute: ['11111111-1111-4111-8111-111111111111'] });
      record.status.session = { ...record.status.session, status: name === 'ended' ? 'complete' : 'running', job: `job-${name}` };
      await sessions.create(record);
      const document = JSON.stringify({ ...runDocumentFor(name, runner), job: `job-${name}` });
      await single.put(sessionKeys.runDocument(name), document);
      for (const key of [runner.runDocument, runner.outcome, `${runner.logsPrefix}0-base.log`, `${runner.logsPrefix}1-site.log`]) await single.put(key, 'x');
    }
    // Act
    await deleteSession({ sessions, workflow, artifacts: single }, 'ended');
    await deleteSession({ sessions, workflow, artifacts: single }, 'stopped');
    const beforeCleanUp = await single.list(runners.stopped.prefix);
    await cleanup({ artifacts: single, sessions }, { session: 'stopped', job: 'job-stopped' });
    // Assert: the running one's objects stayed for its clean-up, which removed them after its runner stopped.
    expect(beforeCleanUp).toHaveLength(4);
    for (const [name, runner] of Object.entries(runners)) {
      expect(await single.list(`sessions/${name}/`)).toEqual([]);
      expect(await single.list(runner.prefix)).toEqual([]);
    }
  });
});

describe('S3ArtifactStore error paths', () => {
  it('aborts the multipart upload when a part fails, and reports a 5xx as a TransientError', async () => {
    // Arrange
    const mock = mockClient(S3Client);
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    mock.on(UploadPartCommand).rejects(Object.assign(new Error('We encountered an internal error'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } }));
    mock.on(AbortMultipartUploadCommand).resolves({});
    const mocked = new S3ArtifactStore(new S3Client({ region: 'us-east-1' }), { partSize: 5 * MiB, queueSize: 1 });
    // Act
    const attempt = mocked.put('boot-images/x/rootfs', generated(11 * MiB));
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'TransientError' });
    expect(mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
    expect(mock.commandCalls(AbortMultipartUploadCommand)[0]?.args[0].input).toMatchObject({ Bucket: 'boot-images', Key: 'x/rootfs', UploadId: 'u1' });
    expect(mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
    mock.restore();
  });

  it("takes S3's full-object SHA-256 of a promoted copy, and leaves out an md5 a multipart-style ETag cannot give", async () => {
    // Arrange
    const mock = mockClient(S3Client);
    const sha256 = createHash('sha256').update('bytes').digest();
    mock.on(CopyObjectCommand).resolves({ CopyObjectResult: { ETag: '"abc-2"' } });
    mock.on(HeadObjectCommand).resolves({ ContentLength: 5, ETag: '"0123456789abcdef0123456789abcdef-2"', ChecksumSHA256: sha256.toString('base64') });
    const mocked = new S3ArtifactStore(new S3Client({ region: 'us-east-1' }));
    // Act
    const promoted = await mocked.promote('boot-images/x/uploads/rootfs', 'boot-images/x/rootfs');
    // Assert
    expect(promoted).toEqual({ key: 'boot-images/x/rootfs', size: 5, etag: '0123456789abcdef0123456789abcdef-2', sha256: sha256.toString('hex') });
    expect(mock.commandCalls(CopyObjectCommand)[0]?.args[0].input).toMatchObject({ Bucket: 'boot-images', Key: 'x/rootfs', CopySource: 'boot-images/x/uploads/rootfs', ChecksumAlgorithm: 'SHA256' });
    mock.restore();
  });

  it('maps throttling on a read to TransientError and access denied to itself', async () => {
    // Arrange
    const mock = mockClient(S3Client);
    mock.on(HeadObjectCommand).rejects(Object.assign(new Error('slow down'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }));
    mock.on(GetObjectCommand).rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }));
    const mocked = new S3ArtifactStore(new S3Client({ region: 'us-east-1' }));
    // Act / Assert
    await expect(mocked.head('boot-images/x/rootfs')).rejects.toMatchObject({ name: 'TransientError' });
    await expect(mocked.get('boot-images/x/rootfs')).rejects.toMatchObject({ name: 'AccessDenied' });
    mock.restore();
  });
});
