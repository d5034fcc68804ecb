import { ValidationError } from '../core/errors.ts';

/** Where the embedded server keeps its artifacts in S3 (`cfs server --artifact-store s3://BUCKET[/prefix] [--s3-endpoint URL]`). */
export interface S3StoreLocation {
  bucket: string;
  /** A key prefix inside the bucket, without slashes at either end; absent: keys at the bucket's root. */
  prefix?: string;
  /** An S3-protocol endpoint other than AWS's (MinIO, Ceph's RADOS gateway): path-style addressing then. */
  endpoint?: string;
  /** AWS_REGION, else us-east-1 (what MinIO and Ceph accept by default). */
  region: string;
}

/** S3's bucket naming rules (3-63 lowercase letters, digits, dots and hyphens, a letter or digit at each end; no IP address). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Parses `s3://BUCKET[/prefix]` and the endpoint into a location, or throws a ValidationError
 * whose message is one line naming the flag. The prefix's segments are plain names: no empty
 * ones, no `.` or `..` (S3 keys would take them, but a prefix like that is a typo, not a layout).
 */
export function parseS3StoreLocation(value: string, endpoint: string | undefined, env: NodeJS.ProcessEnv): S3StoreLocation {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(value);
  if (!match) throw new ValidationError(`--artifact-store takes s3://BUCKET or s3://BUCKET/prefix, not '${value}'`, 'artifact-store');
  const bucket = match[1]!;
  if (!BUCKET_NAME.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw new ValidationError(`--artifact-store: '${bucket}' is not an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)`, 'artifact-store');
  }
  const prefix = (match[2] ?? '').replace(/\/+$/, '');
  if (prefix && prefix.split('/').some((segment) => segment === '' || segment === '.' || segment === '..' || /[\s\\]/.test(segment))) {
    throw new ValidationError(`--artifact-store: the prefix '${prefix}' must be names separated by single slashes (no spaces, '.' or '..')`, 'artifact-store');
  }
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search || url.username) {
      throw new ValidationError(`--s3-endpoint takes an http(s) URL such as https://s3.example.org:8080, not '${endpoint}'`, 's3-endpoint');
    }
  }
  return { bucket, ...(prefix ? { prefix } : {}), ...(endpoint !== undefined ? { endpoint: new URL(endpoint).origin } : {}), region: env.AWS_REGION || 'us-east-1' };
}

/** How the location reads in the server's start line and errors: `s3://bucket/prefix at endpoint`. */
export function describeS3StoreLocation(location: S3StoreLocation): string {
  return `s3://${location.bucket}${location.prefix ? `/${location.prefix}` : ''}${location.endpoint ? ` at ${location.endpoint}` : ''}`;
}

/**
 * The environment the runner reads the same store from (settings.ts): the bucket, the prefix,
 * the endpoint and the region. Credentials are not here: the runner inherits the server's
 * environment (the standard AWS chain), as the server's own client found them. Against an
 * endpoint the SDK computes checksums only where the protocol requires them, as the server's
 * client does (S3-protocol servers differ on the newer default CRC checksums).
 */
export function runnerS3Environment(location: S3StoreLocation): Record<string, string> {
  return {
    ARTIFACT_BUCKET: location.bucket,
    ...(location.prefix ? { ARTIFACT_KEY_PREFIX: location.prefix } : {}),
    ...(location.endpoint ? { ARTIFACT_S3_ENDPOINT: location.endpoint, AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required', AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required' } : {}),
    AWS_REGION: location.region,
  };
}
