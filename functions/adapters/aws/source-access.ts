import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';
import { ValidationError } from '../../core/errors.ts';
import type { SourceAccessCredentials, SourceAccessIssuer } from '../../ports/source-access.ts';
import { AWS_ENV } from './environment.ts';
import { rethrowSdkError } from './sdk-errors.ts';

/**
 * One hour: the longest a role-chained session may last (RenderInventory's own credentials are
 * a role session, so AssumeRole from it is chaining and AWS refuses more). A runner task that
 * starts later than that finds its credentials expired and fails the source-backed layer.
 */
export const SOURCE_ACCESS_SECONDS = 3600;

const STS_TRANSIENT: ReadonlySet<string> = new Set(['Throttling', 'ThrottlingException', 'IDPCommunicationError']);

/** AWS's limit on an inline session policy's plain text. */
const MAX_SESSION_POLICY_CHARS = 2048;

/** A role session name: 2 to 64 of `[\w+=,.@-]`, from the CFS session's name. */
export function roleSessionName(session: string): string {
  const name = `cfs-${session}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
  return name;
}

/**
 * The inline session policy: GetSecretValue on exactly these secrets. A secret's ARN is its
 * name, `-` and six random characters, hence `-??????` (a `*` would also match a secret whose
 * name merely starts with this one's).
 */
export function sessionPolicy(secretArnPrefix: string, secretNames: string[]): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secretNames.map((name) => `${secretArnPrefix}${name}-??????`) }],
  });
}

/**
 * Issues a session's runner its sources' access by assuming the stack's SourceReader role
 * (which may read every secret under the sources' prefix) with a session policy that narrows it
 * to the named secrets: the effective permission is the intersection of the two.
 */
export class StsSourceAccessIssuer implements SourceAccessIssuer {
  constructor(
    private readonly sts: STSClient,
    private readonly options: { roleArn: string; secretArnPrefix: string },
  ) {}

  async issue(session: string, secretNames: string[]): Promise<SourceAccessCredentials> {
    const names = [...new Set(secretNames)].sort();
    if (names.length === 0) throw new Error('no secrets to grant');
    const policy = sessionPolicy(this.options.secretArnPrefix, names);
    if (policy.length > MAX_SESSION_POLICY_CHARS) {
      throw new ValidationError(`the session's layers name ${names.length} sources' secrets, more than one runner's access may cover (AWS allows a ${MAX_SESSION_POLICY_CHARS}-character session policy)`, 'configuration_name');
    }
    let c;
    try {
      ({ Credentials: c } = await this.sts.send(
        new AssumeRoleCommand({ RoleArn: this.options.roleArn, RoleSessionName: roleSessionName(session), Policy: policy, DurationSeconds: SOURCE_ACCESS_SECONDS }),
      ));
    } catch (error) {
      // Throttling is retried by the state machine (TransientError); a refusal fails the session with its name.
      rethrowSdkError(error, STS_TRANSIENT, 'STS', `issuing session '${session}' its sources' access`);
    }
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) throw new Error('STS AssumeRole returned no credentials');
    return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration.toISOString() };
  }
}

/** The issuer the stack configures on RenderInventory (the role and the secrets' ARN prefix), or undefined where it configures none. */
export function sourceAccessIssuerFrom(env: Record<string, string | undefined>, sts: () => STSClient): SourceAccessIssuer | undefined {
  const roleArn = env[AWS_ENV.SOURCE_READER_ROLE_ARN];
  const secretArnPrefix = env[AWS_ENV.SOURCE_SECRET_ARN_PREFIX];
  if (!roleArn || !secretArnPrefix) return undefined;
  if (!/^arn:aws[a-z-]*:secretsmanager:[^:]+:\d{12}:secret:.+\/$/.test(secretArnPrefix)) throw new Error(`${AWS_ENV.SOURCE_SECRET_ARN_PREFIX} must be a secret ARN prefix ending in /`);
  return new StsSourceAccessIssuer(sts(), { roleArn, secretArnPrefix });
}
