import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { acknowledge, arnRef } from '../nag.ts';

/**
 * The key prefixes of the one artifact bucket: IMS image artifacts, the sessions' working
 * documents (the control plane's), and what runners write (`runner/<token>/`, one unguessable
 * prefix per session run).
 */
export const ARTIFACT_PREFIXES = { images: 'boot-images', sessions: 'sessions', runner: 'runner', layerCache: 'layer-cache' } as const;
export type ArtifactPrefix = (typeof ARTIFACT_PREFIXES)[keyof typeof ARTIFACT_PREFIXES];

/** What a principal may do with artifacts, by key prefix. */
export interface ArtifactAccess {
  read?: ArtifactPrefix[];
  write?: ArtifactPrefix[];
  remove?: ArtifactPrefix[];
  /**
   * s3:ListBucket for a reader (default true). False for the runner: listing `runner/` would hand
   * a playbook other sessions' tokens, and it only ever reads keys it was given.
   */
  list?: boolean;
}

/** Why a grant on a prefix cannot name its objects (the cdk-nag IAM5 acknowledgement). */
const WILDCARD_REASONS: Record<ArtifactPrefix, string> = {
  'boot-images': 'Object keys under boot-images/ are image IDs chosen at run time; the grant is limited to that prefix of the product\'s own bucket.',
  sessions: 'Object keys under sessions/ are session names chosen at run time; the grant is limited to that prefix of the product\'s own bucket.',
  runner: 'Object keys under runner/ start with a random token made per session run; the grant is limited to that prefix of the product\'s own bucket, and the runner cannot list it.',
  'layer-cache': 'Object keys under layer-cache/ are cache keys, change set digests and image IDs made at run time; the grant is limited to that prefix of the product\'s own bucket.',
};

export interface ArtifactBucketProps {
  sessionDocumentDays: number;
  noncurrentVersionDays: number;
}

/**
 * The artifact bucket in the IMS layout (`boot-images/<image id>/{manifest.json,rootfs,kernel,
 * initrd}`, see S3ArtifactStore's `bucket` option) plus the sessions' documents under
 * `sessions/<name>/`. Encrypted, public access blocked, TLS only, versioned (a deleted image is
 * recoverable for a while), with server access logs in a second bucket, and lifecycle rules:
 * session documents (run documents, runner outcomes, layer logs) expire, unfinished multipart
 * uploads (an interrupted runner or CLI) are aborted, and old versions do not pile up. Both
 * buckets are kept when the stack is deleted: they hold the images.
 */
export class ArtifactBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: ArtifactBucketProps) {
    super(scope, id);
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.bucket = new s3.Bucket(this, 'Artifacts', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'artifacts/',
      lifecycleRules: [
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(2) },
        { id: 'expire-session-documents-and-logs', prefix: `${ARTIFACT_PREFIXES.sessions}/`, expiration: Duration.days(props.sessionDocumentDays) },
        // What runners wrote (their logs, outcomes, and junk under made-up tokens) goes as session documents do.
        { id: 'expire-runner-prefixes', prefix: `${ARTIFACT_PREFIXES.runner}/`, expiration: Duration.days(props.sessionDocumentDays) },
        { id: 'expire-noncurrent-versions', noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays), expiredObjectDeleteMarker: true },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /**
   * Grants object access by prefix. Readers also get s3:ListBucket on the bucket, unconditioned
   * (unless `list` is false): without it S3 answers a GET of a missing key with 403 instead of
   * 404, and the steps must tell "not uploaded yet" from "forbidden" (an image that is still
   * awaited, an outcome not written).
   */
  grant(grantee: iam.IGrantable, access: ArtifactAccess): void {
    const objects = (prefixes: ArtifactPrefix[] = []) => prefixes.map((prefix) => this.bucket.arnForObjects(`${prefix}/*`));
    const statements: iam.PolicyStatement[] = [];
    if (access.read?.length) {
      statements.push(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: objects(access.read) }));
      if (access.list !== false) statements.push(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }));
    }
    // Multipart uploads (lib-storage) need AbortMultipartUpload to leave nothing behind on failure.
    if (access.write?.length) statements.push(new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resources: objects(access.write) }));
    if (access.remove?.length) statements.push(new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: objects(access.remove) }));
    for (const statement of statements) grantee.grantPrincipal.addToPrincipalPolicy(statement);
    const prefixes = new Set([...(access.read ?? []), ...(access.write ?? []), ...(access.remove ?? [])]);
    for (const prefix of prefixes) {
      acknowledge(
        grantee.grantPrincipal as unknown as Construct,
        `AwsSolutions-IAM5[Resource::${arnRef(this.bucket)}/${prefix}/*]`,
        WILDCARD_REASONS[prefix],
      );
    }
  }
}
