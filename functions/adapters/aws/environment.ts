/**
 * The environment variable names of the AWS runtime. The CDK stack (lib/) sets each one on
 * exactly the functions and the runner task that need it, in the same place as the grant that
 * lets them use it; the composition root reads them through `parseAwsSettings` once per cold
 * start (the dashboard authorizer reads its secret's ARN through `dashboardTokenReader`). One
 * module, so the two sides cannot drift apart; it imports nothing, so the authorizer's small
 * bundle can use it without carrying zod.
 */
export const AWS_ENV = {
  /** The single DynamoDB table (sessions, configurations, images, image waits). */
  TABLE_NAME: 'CFS_TABLE_NAME',
  /** The one S3 bucket holding every artifact key (`boot-images/...`, `sessions/...`); the runner task gets it too, and its sandbox keeps `ARTIFACT_*` variables from playbooks. */
  ARTIFACT_BUCKET: 'ARTIFACT_BUCKET',
  /** The EventBridge bus product events go to. */
  EVENT_BUS_NAME: 'CFS_EVENT_BUS_NAME',
  /** The session state machine (the API starts and stops executions of it). */
  STATE_MACHINE_ARN: 'CFS_STATE_MACHINE_ARN',
  /** Comma-separated clone URL schemes layers may use: `https` (default) and `ssh` (the runner then needs keys). */
  CLONE_URL_SCHEMES: 'CFS_CLONE_URL_SCHEMES',
  IMAGE_WAIT_TIMEOUT_SECONDS: 'CFS_IMAGE_WAIT_TIMEOUT_SECONDS',
  IMAGE_POLL_INTERVAL_SECONDS: 'CFS_IMAGE_POLL_INTERVAL_SECONDS',
  RUNNER_TIMEOUT_SECONDS: 'CFS_RUNNER_TIMEOUT_SECONDS',
  /** `source` (keep the source image's compressor) or a mksquashfs compressor name. */
  SQUASHFS_COMPRESSOR: 'CFS_SQUASHFS_COMPRESSOR',
  SQUASHFS_LEVEL: 'CFS_SQUASHFS_LEVEL',
  /** The product's EventBridge Scheduler group: one schedule per automation (the API keeps them in step). */
  SCHEDULE_GROUP_NAME: 'CFS_SCHEDULE_GROUP_NAME',
  /** What every automation schedule invokes: the trigger Lambda's ARN. */
  SCHEDULE_TARGET_ARN: 'CFS_SCHEDULE_TARGET_ARN',
  /** The role Scheduler assumes to invoke the trigger Lambda (the API passes it). */
  SCHEDULE_ROLE_ARN: 'CFS_SCHEDULE_ROLE_ARN',
  /** The queue a schedule's invocation goes to when its retries are spent. */
  SCHEDULE_DEAD_LETTER_ARN: 'CFS_SCHEDULE_DEAD_LETTER_ARN',
  /** The ECS cluster runner tasks run in (the cancellation clean-up stops a stopped execution's task). */
  RUNNER_CLUSTER: 'CFS_RUNNER_CLUSTER',
  /** The dashboard authorizer's Secrets Manager secret holding the dashboard token (lib/ sets it beside the read grant). */
  DASHBOARD_TOKEN_SECRET_ARN: 'CFS_DASHBOARD_TOKEN_SECRET_ARN',
  /** The Secrets Manager name prefix of CFS sources' git logins (the API may create, read, change and delete secrets under it only). */
  SOURCE_SECRET_PREFIX: 'CFS_SOURCE_SECRET_PREFIX',
  /** RenderInventory's: the SourceReader role it assumes, narrowed to one session's secrets, for that session's runner. */
  SOURCE_READER_ROLE_ARN: 'CFS_SOURCE_READER_ROLE_ARN',
  /** RenderInventory's: the ARN prefix of the sources' secrets (`arn:...:secret:cfs/<stack>/sources/`), for the session policy. */
  SOURCE_SECRET_ARN_PREFIX: 'CFS_SOURCE_SECRET_ARN_PREFIX',
  /** The layer cache's size cap in bytes (the CDK setting `layerCacheMaxBytes`): the default of the setting `layer_cache_max_bytes`, which the sweep applies. */
  LAYER_CACHE_MAX_BYTES: 'LAYER_CACHE_MAX_BYTES',
} as const;
