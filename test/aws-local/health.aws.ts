import { CreateBucketCommand, DeleteBucketCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../functions/cli/api-client.ts';
import { awsLocalForSuite } from './aws-local.ts';

const local = awsLocalForSuite();

/**
 * Health on the AWS composition root: the API Lambda's staged bundle behind the signing front,
 * asking DynamoDB (dynalite), S3 (s3rver) and Step Functions (the stand-in) for real.
 */
describe('health through the deployed shape (the API Lambda)', () => {
  it('answers /apis/cfs/healthz 200 with the table, the bucket and the state machine ok', async () => {
    // Act
    const res = await local.api.request('GET', '/apis/cfs/healthz');
    const version = await local.api.request('GET', '/apis/cfs/v3');
    // Assert
    expect(res).toMatchObject({ status: 200, body: { db_status: 'ok', kafka_status: 'ok' } });
    expect(version.body).toEqual({ major: expect.any(String), minor: expect.any(String), patch: expect.any(String) });
  });

  it('answers 503 while the bucket is gone (the artifact store fails its probe), 200 again once it is back', async () => {
    // Arrange: the health probe leaves nothing in the bucket, so an empty bucket can go.
    await local.s3.client.send(new DeleteBucketCommand({ Bucket: local.shape.bucketName }));
    let broken: unknown;
    try {
      // Act
      broken = await local.api.request('GET', '/apis/cfs/healthz').catch((error: unknown) => error);
    } finally {
      await local.s3.client.send(new CreateBucketCommand({ Bucket: local.shape.bucketName }));
    }
    const repaired = await local.api.request('GET', '/apis/cfs/healthz');
    // Assert
    expect(broken).toBeInstanceOf(ApiError);
    expect((broken as ApiError).status).toBe(503);
    expect(repaired.status).toBe(200);
  });
});
