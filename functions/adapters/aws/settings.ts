import { z } from 'zod';
import { DEFAULT_LAYER_CACHE_SETTINGS, DEFAULT_WORKFLOW_SETTINGS, type WorkflowSettings } from '../../steps/step-ports.ts';
import { AWS_ENV } from './environment.ts';

/** On AWS only https remotes are reachable without extra set-up (no ssh keys, no local paths). */
export const DEFAULT_AWS_CLONE_URL_SCHEMES = ['https'] as const;

const optionalText = z.string().trim().min(1).optional();
const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const settingsSchema = z.object({
  [AWS_ENV.TABLE_NAME]: optionalText,
  [AWS_ENV.ARTIFACT_BUCKET]: optionalText,
  [AWS_ENV.EVENT_BUS_NAME]: optionalText,
  [AWS_ENV.STATE_MACHINE_ARN]: z.string().regex(/^arn:aws[a-z-]*:states:[^:]*:\d{12}:stateMachine:[\w.-]+$/, 'must be a state machine ARN').optional(),
  [AWS_ENV.CLONE_URL_SCHEMES]: z
    .string()
    .default(DEFAULT_AWS_CLONE_URL_SCHEMES.join(','))
    .transform((list) => list.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.enum(['https', 'ssh'])).min(1, 'must name at least one scheme')),
  [AWS_ENV.IMAGE_WAIT_TIMEOUT_SECONDS]: seconds(DEFAULT_WORKFLOW_SETTINGS.imageWaitTimeoutSeconds),
  [AWS_ENV.IMAGE_POLL_INTERVAL_SECONDS]: seconds(DEFAULT_WORKFLOW_SETTINGS.imagePollIntervalSeconds),
  [AWS_ENV.RUNNER_TIMEOUT_SECONDS]: seconds(DEFAULT_WORKFLOW_SETTINGS.runnerTimeoutSeconds),
  [AWS_ENV.SQUASHFS_COMPRESSOR]: z.enum(['source', 'gzip', 'xz', 'lzo', 'lz4', 'zstd']).default(DEFAULT_WORKFLOW_SETTINGS.squashfs.compressor),
  [AWS_ENV.SQUASHFS_LEVEL]: z.coerce.number().int().min(1).max(22).optional(),
  [AWS_ENV.SCHEDULE_GROUP_NAME]: optionalText,
  [AWS_ENV.SCHEDULE_TARGET_ARN]: optionalText,
  [AWS_ENV.SCHEDULE_ROLE_ARN]: optionalText,
  [AWS_ENV.SCHEDULE_DEAD_LETTER_ARN]: optionalText,
  [AWS_ENV.RUNNER_CLUSTER]: optionalText,
  [AWS_ENV.LAYER_CACHE_MAX_BYTES]: z.coerce.number().int().nonnegative().optional(),
  [AWS_ENV.SOURCE_SECRET_PREFIX]: z.string().regex(/^[A-Za-z0-9/_+=.@-]+\/$/, 'must be a Secrets Manager name prefix ending in /').optional(),
});

/** What the AWS composition root knows after reading the environment once. */
export interface AwsSettings {
  tableName?: string;
  artifactBucket?: string;
  eventBusName?: string;
  stateMachineArn?: string;
  scheduleGroupName?: string;
  scheduleTargetArn?: string;
  scheduleRoleArn?: string;
  scheduleDeadLetterArn?: string;
  runnerCluster?: string;
  /** Where CFS sources' logins are kept (the API only); none: sources are not served. */
  sourceSecretPrefix?: string;
  workflow: WorkflowSettings;
}

/** A setting the caller needs is missing or malformed: the function cannot start. */
export class AwsSettingsError extends Error {
  override readonly name = 'AwsSettingsError' as const;
}

/**
 * Parses the environment (names in AWS_ENV). Values every function needs are checked here;
 * the ones only some functions get (the state machine ARN, say) are checked by `requireSetting`
 * when a port that needs them is built, so a function never needs settings it does not use.
 */
export function parseAwsSettings(env: Record<string, string | undefined>): AwsSettings {
  const present = Object.fromEntries(Object.values(AWS_ENV).flatMap((name) => (env[name] ? [[name, env[name]]] : [])));
  const parsed = settingsSchema.safeParse(present);
  if (!parsed.success) {
    throw new AwsSettingsError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const s = parsed.data;
  const level = s[AWS_ENV.SQUASHFS_LEVEL];
  return {
    tableName: s[AWS_ENV.TABLE_NAME],
    artifactBucket: s[AWS_ENV.ARTIFACT_BUCKET],
    eventBusName: s[AWS_ENV.EVENT_BUS_NAME],
    stateMachineArn: s[AWS_ENV.STATE_MACHINE_ARN],
    scheduleGroupName: s[AWS_ENV.SCHEDULE_GROUP_NAME],
    scheduleTargetArn: s[AWS_ENV.SCHEDULE_TARGET_ARN],
    scheduleRoleArn: s[AWS_ENV.SCHEDULE_ROLE_ARN],
    scheduleDeadLetterArn: s[AWS_ENV.SCHEDULE_DEAD_LETTER_ARN],
    runnerCluster: s[AWS_ENV.RUNNER_CLUSTER],
    sourceSecretPrefix: s[AWS_ENV.SOURCE_SECRET_PREFIX],
    workflow: {
      imageWaitTimeoutSeconds: s[AWS_ENV.IMAGE_WAIT_TIMEOUT_SECONDS],
      imagePollIntervalSeconds: s[AWS_ENV.IMAGE_POLL_INTERVAL_SECONDS],
      runnerTimeoutSeconds: s[AWS_ENV.RUNNER_TIMEOUT_SECONDS],
      squashfs: { compressor: s[AWS_ENV.SQUASHFS_COMPRESSOR], ...(level !== undefined ? { level } : {}) },
      allowedCloneSchemes: s[AWS_ENV.CLONE_URL_SCHEMES],
      layerCache: { ...DEFAULT_LAYER_CACHE_SETTINGS, maxBytes: s[AWS_ENV.LAYER_CACHE_MAX_BYTES] ?? null },
    },
  };
}

const SETTING_ENV: Record<'tableName' | 'artifactBucket' | 'eventBusName' | 'stateMachineArn' | 'scheduleGroupName' | 'scheduleTargetArn' | 'scheduleRoleArn' | 'runnerCluster', string> = {
  tableName: AWS_ENV.TABLE_NAME,
  artifactBucket: AWS_ENV.ARTIFACT_BUCKET,
  eventBusName: AWS_ENV.EVENT_BUS_NAME,
  stateMachineArn: AWS_ENV.STATE_MACHINE_ARN,
  scheduleGroupName: AWS_ENV.SCHEDULE_GROUP_NAME,
  scheduleTargetArn: AWS_ENV.SCHEDULE_TARGET_ARN,
  scheduleRoleArn: AWS_ENV.SCHEDULE_ROLE_ARN,
  runnerCluster: AWS_ENV.RUNNER_CLUSTER,
};

/** The value of a setting a port needs; fails loudly, naming the variable, when it is missing. */
export function requireSetting(settings: AwsSettings, key: keyof typeof SETTING_ENV): string {
  const value = settings[key];
  if (!value) throw new AwsSettingsError(`the environment variable ${SETTING_ENV[key]} is not set; the CDK stack sets it on the functions that need it`);
  return value;
}
