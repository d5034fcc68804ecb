import { parseArgs } from 'node:util';
import { z } from 'zod';
import { RunnerFailure } from './failures.ts';

/**
 * The runner's environment variable names: the ECS task definition (lib/) sets them, the
 * runner reads them. On one machine the engine passes the same settings as flags instead.
 */
export const RUNNER_ENV = {
  /** Store key of the run document, e.g. `sessions/<name>/run-document.json`. */
  RUN_DOCUMENT_KEY: 'RUN_DOCUMENT_KEY',
  /** The workspace directory (created and removed by the run). */
  RUNNER_WORKSPACE: 'RUNNER_WORKSPACE',
  /** A local artifact store directory; when unset the store is S3 (keys are `<bucket>/<path>`). */
  ARTIFACT_STORE_DIR: 'ARTIFACT_STORE_DIR',
  /** An S3-protocol endpoint other than AWS's (optional; path-style addressing is then used). */
  ARTIFACT_S3_ENDPOINT: 'ARTIFACT_S3_ENDPOINT',
  /** The one S3 bucket holding every key, with `boot-images/` and `sessions/` as prefixes (as the Lambdas use it). */
  ARTIFACT_BUCKET: 'ARTIFACT_BUCKET',
  /** A key prefix inside ARTIFACT_BUCKET (the embedded server's `--artifact-store s3://BUCKET/prefix`). */
  ARTIFACT_KEY_PREFIX: 'ARTIFACT_KEY_PREFIX',
  /** `namespace` (default) or `container` (the task's container is the sandbox: no unshare, no mounts). */
  RUNNER_SANDBOX: 'RUNNER_SANDBOX',
  /** `egress` (default: a user-mode network out, no host loopback, no link-local) or `none` (loopback only), for namespace mode. The operator's setting: never from a session. */
  RUNNER_NETWORK: 'RUNNER_NETWORK',
  /** `true` to copy each layer's Ansible output to stdout as well (CloudWatch can then follow it live). */
  RUNNER_ECHO_LAYER_OUTPUT: 'RUNNER_ECHO_LAYER_OUTPUT',
  /** Bytes of the task's memory its unpacked roots may take as tmpfs (0 or unset: always on disk). The embedded engine answers over IPC instead. */
  RUNNER_WORKSPACE_MEMORY_BYTES: 'RUNNER_WORKSPACE_MEMORY_BYTES',
  /** AWS: the Secrets Manager name prefix of the stack's sources' secrets (`cfs/<stack>/sources/`); the run's credentials read only its own session's. */
  RUNNER_SOURCE_SECRET_PREFIX: 'RUNNER_SOURCE_SECRET_PREFIX',
} as const;

const settingsSchema = z.object({
  documentKey: z.string().min(1, `the run document key is required (--document-key or ${RUNNER_ENV.RUN_DOCUMENT_KEY})`),
  workspace: z.string().startsWith('/', `the workspace must be an absolute path (--workspace or ${RUNNER_ENV.RUNNER_WORKSPACE})`),
  storeDir: z.string().startsWith('/', 'the store directory must be an absolute path').optional(),
  s3Endpoint: z.string().url().optional(),
  s3Bucket: z.string().min(3).optional(),
  s3Prefix: z.string().min(1).optional(),
  sandbox: z.enum(['namespace', 'container']),
  network: z.enum(['egress', 'none'], { message: `the network must be egress or none (--network or ${RUNNER_ENV.RUNNER_NETWORK})` }),
  echoLayerOutput: z.boolean(),
  /** AWS: where the sources' secrets are named (the run's own credentials read just its session's). */
  sourceSecretPrefix: z.string().regex(/^[A-Za-z0-9/_+=.@-]+\/$/, `the sources' secret prefix must be a Secrets Manager name prefix ending in / (${RUNNER_ENV.RUNNER_SOURCE_SECRET_PREFIX})`).optional(),
  /** The descriptor the embedded engine writes the session's sources' logins to (read once, then closed). */
  sourceSecretsFd: z.coerce.number({ message: 'the source secrets descriptor must be a number' }).int().min(3).optional(),
  workspaceMemoryBytes: z.coerce
    .number({ message: `the workspace memory must be a number of bytes (${RUNNER_ENV.RUNNER_WORKSPACE_MEMORY_BYTES})` })
    .int({ message: `the workspace memory must be a whole number of bytes (${RUNNER_ENV.RUNNER_WORKSPACE_MEMORY_BYTES})` })
    .min(0, { message: `the workspace memory cannot be negative (${RUNNER_ENV.RUNNER_WORKSPACE_MEMORY_BYTES})` })
    .optional(),
});

/** The runner's settings, from flags first and the environment second. */
export type RunnerSettings = z.infer<typeof settingsSchema>;

/** Parses `--document-key KEY --store-dir DIR --workspace DIR [--sandbox MODE] [--network MODE] [--echo-layer-output]` over the environment. */
export function runnerSettings(argv: string[], env: NodeJS.ProcessEnv): RunnerSettings {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'document-key': { type: 'string' },
        'store-dir': { type: 'string' },
        workspace: { type: 'string' },
        sandbox: { type: 'string' },
        network: { type: 'string' },
        'echo-layer-output': { type: 'boolean' },
        'source-secrets-fd': { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new RunnerFailure('input', (error as Error).message);
  }
  const candidate = {
    documentKey: values['document-key'] ?? env[RUNNER_ENV.RUN_DOCUMENT_KEY] ?? '',
    workspace: values.workspace ?? env[RUNNER_ENV.RUNNER_WORKSPACE] ?? '',
    storeDir: values['store-dir'] ?? (env[RUNNER_ENV.ARTIFACT_STORE_DIR] || undefined),
    s3Endpoint: env[RUNNER_ENV.ARTIFACT_S3_ENDPOINT] || undefined,
    s3Bucket: env[RUNNER_ENV.ARTIFACT_BUCKET] || undefined,
    s3Prefix: env[RUNNER_ENV.ARTIFACT_KEY_PREFIX] || undefined,
    sandbox: values.sandbox ?? (env[RUNNER_ENV.RUNNER_SANDBOX] || 'namespace'),
    network: values.network ?? (env[RUNNER_ENV.RUNNER_NETWORK] || 'egress'),
    echoLayerOutput: values['echo-layer-output'] ?? env[RUNNER_ENV.RUNNER_ECHO_LAYER_OUTPUT] === 'true',
    sourceSecretsFd: values['source-secrets-fd'],
    sourceSecretPrefix: env[RUNNER_ENV.RUNNER_SOURCE_SECRET_PREFIX] || undefined,
    workspaceMemoryBytes: env[RUNNER_ENV.RUNNER_WORKSPACE_MEMORY_BYTES] || undefined,
  };
  const parsed = settingsSchema.safeParse(candidate);
  if (!parsed.success) throw new RunnerFailure('input', parsed.error.issues.map((i) => i.message).join('; '));
  return parsed.data;
}
