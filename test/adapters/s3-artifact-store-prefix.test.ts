import { ListObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';
import { parseS3StoreLocation, runnerS3Environment } from '../../functions/server/s3-store-location.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';

const BUCKET = 'shared-site';
let directory: string;
let s3: LocalS3;
let store: S3ArtifactStore;

/** Every object key in the bucket, read past the store. */
async function bucketKeys(): Promise<string[]> {
  const page = await s3.client.send(new ListObjectsCommand({ Bucket: BUCKET }));
  return (page.Contents ?? []).map((object) => object.Key!).sort();
}

async function text(key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 's3-prefix-'));
  s3 = await startLocalS3(directory, [BUCKET]);
  store = new S3ArtifactStore(s3.client, { bucket: BUCKET, prefix: 'cfs/store/' });
  // Another use of the same bucket, beside the prefix and under a name that starts like it.
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'other/boot-images/x/rootfs', Body: 'not ours' }));
  await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'cfs/store-old/boot-images/x/rootfs', Body: 'not ours either' }));
});
afterAll(async () => {
  await s3.close();
  await rm(directory, { recursive: true, force: true });
});

describe('the S3 artifact store with a key prefix in one bucket', () => {
  it('writes, reads, lists and deletes store keys as objects under the prefix, leaving the rest of the bucket alone', async () => {
    // Arrange
    await store.put('boot-images/a/manifest.json', '{"a":1}');
    await store.put('boot-images/a/rootfs', 'root bytes');
    await store.put('sessions/s1/layers/one.log', 'log');
    // Act
    const listed = await store.list('boot-images/');
    const modified = await store.listModified('boot-images/a/');
    const read = await text('boot-images/a/rootfs');
    const head = await store.head('boot-images/a/rootfs');
    const removed = await store.deletePrefix('sessions/s1/');
    // Assert
    expect(listed).toEqual(['boot-images/a/manifest.json', 'boot-images/a/rootfs']);
    expect(modified.map((m) => m.key)).toEqual(['boot-images/a/manifest.json', 'boot-images/a/rootfs']);
    expect(read).toBe('root bytes');
    expect(head?.size).toBe(10);
    expect(removed).toBe(1);
    expect(await bucketKeys()).toEqual(['cfs/store-old/boot-images/x/rootfs', 'cfs/store/boot-images/a/manifest.json', 'cfs/store/boot-images/a/rootfs', 'other/boot-images/x/rootfs']);
  });

  it('promotes a staged upload and completes a multipart upload under the prefix', async () => {
    // Arrange
    const uploadUrl = await store.uploadUrl('boot-images/b/staging/rootfs', 60);
    await fetch(uploadUrl, { method: 'PUT', body: 'staged bytes' });
    const part = Buffer.alloc(1024, 7);
    const sha256 = createHash('sha256').update(part).digest('hex');
    const uploadId = await store.createMultipart('boot-images/c/rootfs');
    const partUrl = await store.multipartPartUrl('boot-images/c/rootfs', uploadId, { number: 1, sha256 }, 60);
    const sent = await fetch(partUrl.url, { method: 'PUT', body: part, headers: partUrl.headers });
    // Act
    const promoted = await store.promote('boot-images/b/staging/rootfs', 'boot-images/b/rootfs');
    // s3rver has no ListParts: the part's ETag comes from its PUT's answer.
    await store.completeMultipart('boot-images/c/rootfs', uploadId, [{ number: 1, size: part.length, etag: sent.headers.get('etag') ?? undefined }]);
    // Assert
    expect(new URL(uploadUrl).pathname).toBe(`/${BUCKET}/cfs/store/boot-images/b/staging/rootfs`);
    expect(promoted).toMatchObject({ key: 'boot-images/b/rootfs', size: 12 });
    expect(await text('boot-images/b/rootfs')).toBe('staged bytes');
    expect(sent.status).toBe(200);
    expect((await store.head('boot-images/c/rootfs'))?.size).toBe(1024);
    const keys = await bucketKeys();
    expect(keys).toContain('cfs/store/boot-images/b/rootfs');
    expect(keys).toContain('cfs/store/boot-images/c/rootfs');
    expect(keys).not.toContain('cfs/store/boot-images/b/staging/rootfs');
  });

  it('refuses a prefix without the one bucket that would hold it', () => {
    // Act
    const make = () => new S3ArtifactStore(s3.client, { prefix: 'cfs' });
    // Assert
    expect(make).toThrow('a key prefix needs the one bucket that holds every key');
  });
});

describe('the embedded server\'s S3 store location', () => {
  it('reads s3://BUCKET/prefix and the endpoint, defaulting the region to us-east-1, and names them to the runner', () => {
    // Act
    const location = parseS3StoreLocation('s3://site-cfs/cfs/artifacts/', 'http://minio.example:9000/', {});
    const inAws = parseS3StoreLocation('s3://site-cfs', undefined, { AWS_REGION: 'eu-west-1' });
    // Assert
    expect(location).toEqual({ bucket: 'site-cfs', prefix: 'cfs/artifacts', endpoint: 'http://minio.example:9000', region: 'us-east-1' });
    expect(inAws).toEqual({ bucket: 'site-cfs', region: 'eu-west-1' });
    expect(runnerS3Environment(location)).toEqual({
      ARTIFACT_BUCKET: 'site-cfs',
      ARTIFACT_KEY_PREFIX: 'cfs/artifacts',
      ARTIFACT_S3_ENDPOINT: 'http://minio.example:9000',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
      AWS_REGION: 'us-east-1',
    });
    expect(runnerS3Environment(inAws)).toEqual({ ARTIFACT_BUCKET: 'site-cfs', AWS_REGION: 'eu-west-1' });
  });

  it.each([
    ['s3:/site-cfs', undefined, /^--artifact-store takes s3:\/\/BUCKET/],
    ['s3://', undefined, /^--artifact-store takes s3:\/\/BUCKET/],
    ['s3://ab', undefined, /is not an S3 bucket name/],
    ['s3://192.168.1.10', undefined, /is not an S3 bucket name/],
    ['s3://site..cfs', undefined, /is not an S3 bucket name/],
    ['s3://site-cfs/a/../b', undefined, /the prefix 'a\/\.\.\/b' must be names/],
    ['s3://site-cfs', 'minio:9000', /^--s3-endpoint takes an http\(s\) URL/],
    ['s3://site-cfs', 'http://minio:9000/path', /^--s3-endpoint takes an http\(s\) URL/],
  ])('refuses %s (endpoint %s) in one line', (value, endpoint, message) => {
    // Act
    const parse = () => parseS3StoreLocation(value, endpoint, {});
    // Assert
    expect(parse).toThrow(message);
  });
});
