import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3ArtifactStore } from '../adapters/aws/s3-artifact-store.ts';
import { describeS3StoreLocation, type S3StoreLocation } from './s3-store-location.ts';

/** The embedded server's artifact store in S3, with the client to destroy at close. */
export interface OpenedS3Store {
  store: S3ArtifactStore;
  client: S3Client;
}

/**
 * Opens the S3 store a `cfs server --artifact-store s3://...` names: credentials from the
 * standard AWS chain (AWS_ACCESS_KEY_ID..., a profile, an instance role), path-style addressing
 * against an endpoint (what MinIO and Ceph's gateway serve without wildcard DNS). Checks the
 * bucket with HeadBucket first, so a wrong name, endpoint or key refuses the start in one line
 * instead of failing every session.
 */
export async function openS3ArtifactStore(location: S3StoreLocation): Promise<OpenedS3Store> {
  const client = new S3Client({
    region: location.region,
    ...(location.endpoint
      ? // S3-protocol servers differ on the SDK's newer default CRC checksums: only where the protocol requires them.
        { endpoint: location.endpoint, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }
      : {}),
  });
  try {
    await client.send(new HeadBucketCommand({ Bucket: location.bucket }));
  } catch (error) {
    client.destroy();
    throw new Error(`the artifact store ${describeS3StoreLocation(location)} cannot be used: ${whyUnreachable(error)}`);
  }
  return { store: new S3ArtifactStore(client, { bucket: location.bucket, ...(location.prefix ? { prefix: location.prefix } : {}) }), client };
}

/** HeadBucket answers without a body: its status says what went wrong. */
function whyUnreachable(error: unknown): string {
  const e = error as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (status === 404) return 'no such bucket';
  if (status === 403) return 'access denied (the credentials come from the standard AWS chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role)';
  if (status === 301 || status === 400) return `the bucket answered ${status} (another region? set AWS_REGION)`;
  return (e.message || e.code || e.name || String(error)).split('\n')[0]!;
}
