import type { Node } from 'constructs';
import { z } from 'zod';
import { DEFAULT_WORKFLOW_SETTINGS } from '../functions/steps/step-ports.ts';

/** Fargate's valid memory sizes (MiB) per CPU size (CPU units): [from, to, step]. */
const FARGATE_MEMORY: Record<number, [number, number, number]> = {
  1024: [2048, 8192, 1024],
  2048: [4096, 16384, 1024],
  4096: [8192, 30720, 1024],
  8192: [16384, 61440, 4096],
  16384: [32768, 122880, 8192],
};

/**
 * The deployment's settings, from CDK context (`cdk.json`, or `-c cfs:<name>=<value>` on the
 * command line, where every value arrives as a string, hence the coercion).
 */
export const stackSettingsSchema = z
  .object({
    /** `fargate`: no servers to run, but no privileged mounts; `ec2`: an Auto Scaling group from 0, privileged runner with the namespace sandbox. */
    runnerCapacity: z.enum(['fargate', 'ec2']).default('fargate'),
    /** The runner's CPU architecture; it must match the images' (`x86_64` images need `x86_64` runners). */
    runnerArchitecture: z.enum(['x86_64', 'arm64']).default('x86_64'),
    runnerCpu: z.coerce.number().int().default(4096),
    runnerMemoryMiB: z.coerce.number().int().default(16384),
    /** Disk for the source roots, the customized roots and the new squashfs files (Fargate: 21 to 200 GiB). */
    runnerEphemeralStorageGiB: z.coerce.number().int().min(21).max(200).default(100),
    /** EC2 capacity only: the instance type and the most instances running at once. */
    ec2InstanceType: z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/).optional(),
    ec2MaxInstances: z.coerce.number().int().min(1).max(20).default(2),
    /** How runner tasks reach ECR, CloudWatch Logs and git remotes: a NAT gateway, or interface endpoints (no internet: git remotes must be reachable privately). */
    runnerEgress: z.enum(['nat', 'endpoints']).default('nat'),
    /** The layers' own network inside the runner's namespace sandbox (EC2 capacity): `egress` (out through a user-mode stack, no host or link-local addresses) or `none`. An operator's setting: no session can widen it. */
    runnerLayerNetwork: z.enum(['egress', 'none']).default('egress'),
    /** API Gateway stage throttling: steady requests per second and burst. */
    apiRateLimit: z.coerce.number().positive().default(20),
    apiBurstLimit: z.coerce.number().int().positive().default(40),
    /** Retention of every log group (Lambda, runner, state machine, API access logs, VPC flow logs). */
    logRetentionDays: z.coerce.number().int().default(30),
    /** Days session documents (run documents, runner outcomes, layer logs under `sessions/`) are kept in the bucket. */
    sessionDocumentDays: z.coerce.number().int().min(1).default(90),
    /** Days a deleted or replaced artifact stays recoverable (the bucket is versioned). */
    noncurrentVersionDays: z.coerce.number().int().min(1).default(30),
    imageWaitTimeoutSeconds: z.coerce.number().int().positive().default(DEFAULT_WORKFLOW_SETTINGS.imageWaitTimeoutSeconds),
    imagePollIntervalSeconds: z.coerce.number().int().positive().default(DEFAULT_WORKFLOW_SETTINGS.imagePollIntervalSeconds),
    /** The runner's own budget; below the RunAnsible state's 24 h outer bound. */
    runnerTimeoutSeconds: z.coerce.number().int().positive().max(86_000).default(DEFAULT_WORKFLOW_SETTINGS.runnerTimeoutSeconds),
    /** Clone URL schemes layers may use on AWS (comma-separated): `https`, and `ssh` when the runner has keys. */
    cloneUrlSchemes: z.string().regex(/^(https|ssh)(,(https|ssh))*$/).default('https'),
    /** The layer cache's size cap in bytes (issue 19), the default of the setting `layer_cache_max_bytes`; past it the least recently used entries are evicted. Default 100 GiB. */
    layerCacheMaxBytes: z.coerce.number().int().nonnegative().default(100 * 1024 ** 3),
    /** Where the alarms go: an existing SNS topic's ARN; without it the stack makes a topic of its own (output `AlarmTopicArn`) to subscribe to. */
    alarmTopicArn: z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/, 'must be an SNS topic ARN').optional(),
    /** The share of API requests answered 5xx (over 5 minutes) above which the API alarm goes off. */
    api5xxRatio: z.coerce.number().gt(0).lt(1).default(0.05),
  })
  .superRefine((s, context) => {
    if (s.runnerCapacity !== 'fargate') return;
    const range = FARGATE_MEMORY[s.runnerCpu];
    if (!range) {
      context.addIssue({ code: 'custom', path: ['runnerCpu'], message: `Fargate offers ${Object.keys(FARGATE_MEMORY).join(', ')} CPU units for this work` });
      return;
    }
    const [from, to, step] = range;
    if (s.runnerMemoryMiB < from || s.runnerMemoryMiB > to || (s.runnerMemoryMiB - from) % step !== 0) {
      context.addIssue({ code: 'custom', path: ['runnerMemoryMiB'], message: `with ${s.runnerCpu} CPU units Fargate takes ${from} to ${to} MiB in steps of ${step}` });
    }
  });

export type StackSettings = z.infer<typeof stackSettingsSchema>;

/** Context keys are `cfs:<setting>`. */
export const CONTEXT_PREFIX = 'cfs:';

/** Reads and checks the settings from a construct's context; a bad value stops the synth with its name. */
export function stackSettingsFromContext(node: Node): StackSettings {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(stackSettingsSchema.shape)) {
    const value: unknown = node.tryGetContext(`${CONTEXT_PREFIX}${key}`);
    if (value !== undefined) raw[key] = value;
  }
  return parseStackSettings(raw);
}

/** Checks settings given as an object (tests, and the context reader). */
export function parseStackSettings(raw: Record<string, unknown> = {}): StackSettings {
  const parsed = stackSettingsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`invalid deployment settings: ${parsed.error.issues.map((i) => `${CONTEXT_PREFIX}${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}
