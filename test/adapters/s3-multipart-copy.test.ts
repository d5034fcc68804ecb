import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';

// Promoting a staged upload over 5 GB: CopyObject cannot, so the store copies it in 1 GiB parts
// inside S3 (UploadPartCopy). s3rver has no UploadPartCopy, so the SDK client is mocked here.

const GiB = 1024 ** 3;
const s3 = mockClient(S3Client);
const size = 12 * GiB + 5;

beforeEach(() => {
  s3.reset();
  s3.on(HeadObjectCommand).resolves({ ContentLength: size, ETag: '"abc-3"' });
  s3.on(CreateMultipartUploadCommand).resolves({ UploadId: 'copy-1' });
  s3.on(UploadPartCopyCommand).callsFake((input: { PartNumber: number }) => ({ CopyPartResult: { ETag: `"e${input.PartNumber}"`, ChecksumSHA256: `c${input.PartNumber}` } }));
  s3.on(CompleteMultipartUploadCommand).resolves({});
  s3.on(DeleteObjectCommand).resolves({});
});

describe('promoting a staged upload over 5 GB on S3', () => {
  it('copies it in 1 GiB ranges and completes with every part in order, never with CopyObject', async () => {
    // Arrange
    const store = new S3ArtifactStore(new S3Client({ region: 'us-east-1' }), { bucket: 'site' });
    // Act
    const promoted = await store.promote('boot-images/i/uploads/rootfs', 'boot-images/i/rootfs');
    // Assert
    expect(s3.commandCalls(CopyObjectCommand)).toHaveLength(0);
    const ranges = s3.commandCalls(UploadPartCopyCommand).map((call) => [call.args[0].input.PartNumber, call.args[0].input.CopySourceRange]);
    expect(ranges).toHaveLength(13);
    expect(ranges).toContainEqual([1, `bytes=0-${GiB - 1}`]);
    expect(ranges).toContainEqual([13, `bytes=${12 * GiB}-${size - 1}`]);
    const complete = s3.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input;
    expect(complete).toMatchObject({ Bucket: 'site', Key: 'boot-images/i/rootfs', UploadId: 'copy-1' });
    expect(complete.MultipartUpload!.Parts!.map((part) => part.PartNumber)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    expect(s3.commandCalls(DeleteObjectCommand)[0]!.args[0].input).toMatchObject({ Key: 'boot-images/i/uploads/rootfs' });
    // A multipart ETag is no md5, and the composite checksum no sha256: the registration reads the bytes back.
    expect(promoted).toEqual({ key: 'boot-images/i/rootfs', size, etag: 'abc-3' });
  });

  it('aborts the copy and keeps the staged object when a part fails', async () => {
    // Arrange
    s3.on(UploadPartCopyCommand, { PartNumber: 7 }).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }));
    const store = new S3ArtifactStore(new S3Client({ region: 'us-east-1' }), { bucket: 'site' });
    // Act
    const attempt = store.promote('boot-images/i/uploads/rootfs', 'boot-images/i/rootfs');
    // Assert
    await expect(attempt).rejects.toThrow();
    expect(s3.commandCalls(AbortMultipartUploadCommand)[0]!.args[0].input).toMatchObject({ Key: 'boot-images/i/rootfs', UploadId: 'copy-1' });
    expect(s3.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
    expect(s3.commandCalls(DeleteObjectCommand)).toHaveLength(0);
  });
});
