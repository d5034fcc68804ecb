import { z } from 'zod';
import type { DownloadUrl, UploadUrl } from '../core/images/artifact-urls.ts';
import { ARTIFACT_NAMES, IMAGE_ARCHES, imageLinkSchema, manifestSchema } from '../core/images/schemas.ts';
import type { configurationToV2, configurationToV3 } from '../core/configurations/configuration-conversion.ts';
import type { ImageManifest } from '../core/model/image.ts';
import type { sessionToV2, sessionToV3 } from '../core/sessions/session-conversion.ts';
import { TARGET_DEFINITIONS } from '../core/sessions/session-schemas.ts';
import { validationSpecSchema } from '../core/sessions/validation-spec.ts';
import type { StoredObject } from '../ports/artifact-store.ts';
import type { automationView } from './routes/cfs-automations.ts';
import type { AutomationPlan } from '../core/automations/plan.ts';
import type { SessionPlan } from '../core/automations/session-plan.ts';
import type { AutomationRunResult } from '../core/automations/trigger.ts';
import type { SessionLogChunk } from '../core/sessions/logs.ts';
import type { Problem } from './problem.ts';
import type { ServiceVersion } from '../core/service/service-version.ts';

/**
 * zod schemas of the response bodies, for the OpenAPI document. Requests are validated by the
 * core's own schemas; responses are built from TypeScript types, so each schema here is tied
 * to its type at compile time (`Same` below): a field added to a record without its schema,
 * or the reverse, fails `tsc`, so the document cannot drift from what the API answers.
 */

/** True when the two types have the same keys, optional or not, each with the same type. */
type Same<A, B> = (<T>() => T extends Normalize<A> ? 1 : 2) extends <T>() => T extends Normalize<B> ? 1 : 2 ? true : false;
/** Deeply: optional properties as `?: T | undefined` (how zod writes them), so only real differences count. */
type Normalize<T> = T extends Array<infer I>
  ? Array<Normalize<I>>
  : T extends object
    ? { [K in keyof T]-?: undefined extends T[K] ? Normalize<Exclude<T[K], undefined>> | undefined | Optional : Normalize<T[K]> }
    : T;
/** Marks a key that may be absent, so a required `x: T | undefined` never equals an optional `x?: T`. */
type Optional = { readonly optionalMarker: unique symbol };
const same = <A, B>(check: Same<A, B>) => check;

const rfc3339 = z.string().meta({ description: 'RFC 3339 time, UTC (`2026-11-26T10:00:00Z`).' });
const sessionStatus = z.enum(['pending', 'running', 'complete']);
const sessionSucceeded = z.enum(['none', 'true', 'false', 'unknown']);

const targetSchema = z.object({
  definition: z.enum(TARGET_DEFINITIONS),
  groups: z.array(z.object({ name: z.string(), members: z.array(z.string()) })),
  image_map: z.array(z.object({ source_id: z.string(), result_name: z.string() })),
});

const artifactSchema = z.object({ image_id: z.string(), result_id: z.string(), type: z.literal('ims_customized_image') });

const pinnedArtifactSchema = z.object({ key: z.string(), size: z.int().min(0), sha256: z.string(), md5: z.string() });

/** A session's or automation's `validation` as stored: the create body's, every default filled in. */
const validationViewSchema = validationSpecSchema
  .optional()
  .meta({
    description:
      'Extension: the checks and boot test each result must pass before it is registered, defaults filled in; present only when the session (or automation) asked for them.',
  });

/** This product's extensions under `status` (the CFS spec leaves `status` open). */
const statusExtensions = {
  layers: z
    .array(z.object({ name: z.string(), clone_url: z.string(), commit: z.string(), playbook: z.string(), source: z.string().optional() }))
    .meta({ description: 'Extension: the layers (after configuration_limit) pinned when the session was created; later configuration edits never change a session.' }),
  plan: z
    .array(
      z.object({
        image_id: z.string(),
        source_name: z.string(),
        arch: z.enum(IMAGE_ARCHES),
        rootfs: pinnedArtifactSchema,
        kernel: pinnedArtifactSchema.optional(),
        initrd: pinnedArtifactSchema.optional(),
        boot_parameters: pinnedArtifactSchema.optional(),
        result_name: z.string(),
        result_id: z.string(),
        upload_prefix: z.string(),
        fingerprint: z.string().optional().meta({ description: "The input fingerprint of this image's customization (also the result image's cfs_fingerprint metadata)." }),
      }),
    )
    .optional()
    .meta({ description: 'Extension: the staging plan, one entry per unique source image (its pinned inputs and where its result goes).' }),
  steps: z
    .array(
      z.object({
        name: z.string(),
        state: z.enum(['running', 'succeeded', 'failed', 'skipped', 'cached']),
        start_time: z.string().optional(),
        end_time: z.string().optional(),
        image_id: z.string().optional(),
        layer: z.string().optional(),
        check: z.string().optional().meta({ description: 'In a `test` step: the check this entry is.' }),
        boot: z.enum(['kvm', 'tcg']).optional().meta({ description: 'In a `test` step: the boot test, naming the accelerator it ran on.' }),
        duration_ms: z.number().optional().meta({ description: 'How long an ended check or boot test took.' }),
        cached_from: z
          .object({ session: z.string(), created: z.string() })
          .optional()
          .meta({ description: 'A `cached` layer: reused from the layer cache; the session that recorded it and when (its age is counted from `created`).' }),
      }),
    )
    .optional()
    .meta({ description: 'Extension: progress of each workflow step (per image and layer where set; per check and boot test in `test`); a layer reused from the layer cache is `cached`.' }),
  failure: z
    .object({ step: z.string(), reason: z.string(), layer: z.string().optional(), image_id: z.string().optional() })
    .optional()
    .meta({ description: 'Extension: why a failed session failed: the step, the reason, and the layer or image.' }),
  debug: z
    .object({
      until: rfc3339,
      released_at: rfc3339.optional(),
      workspace: z.string(),
      inventory: z.string(),
      images: z.array(z.object({ image_id: z.string(), root: z.string(), enter: z.string() })),
      layers: z.array(z.object({ index: z.int().min(0), name: z.string(), directory: z.string(), command: z.string() })),
    })
    .optional()
    .meta({ description: 'Extension: the debug hold of a failed session with debug_on_failure: its workspace kept until `until` (or release), each image root and each layer with the command that reruns it.' }),
  message: z.string().optional().meta({ description: 'Extension: a progress note, e.g. the image IDs a pending session still waits for.' }),
  validation: validationViewSchema,
  layer_cache: z.literal(false).optional().meta({ description: 'Extension: false when the session asked for a full run (no layer reused from the layer cache); absent otherwise.' }),
  layer_keys: z
    .record(z.string(), z.array(z.string()))
    .optional()
    .meta({ description: "Extension: each source image's layer cache keys, by layer index: where each layer's changes report is kept (GET .../layers/{index}/changes)." }),
};

/** V3SessionData, with this product's `status` extensions. */
export const v3SessionSchema = z.object({
  name: z.string(),
  configuration: z.object({ name: z.string(), limit: z.string() }),
  ansible: z.object({ config: z.string(), limit: z.string(), verbosity: z.int().min(0).max(4), passthrough: z.string() }),
  target: targetSchema,
  tags: z.record(z.string(), z.string()),
  debug_on_failure: z.boolean(),
  logs: z.string().meta({ description: "The path of the session's Ansible logs (GET it with a cursor to follow them)." }),
  status: z.object({
    session: z.object({
      status: sessionStatus,
      succeeded: sessionSucceeded,
      start_time: rfc3339,
      completion_time: rfc3339.optional(),
      job: z.string().optional().meta({ description: 'The workflow execution (Step Functions execution ARN, or the embedded engine\'s id).' }),
      ims_job: z.string().optional(),
    }),
    artifacts: z.array(artifactSchema),
    ...statusExtensions,
  }),
});
// `expires_at` (the table's TTL attribute) is stored, never shown.
same<z.output<typeof v3SessionSchema>, Omit<ReturnType<typeof sessionToV3>, 'expires_at'>>(true);

/** V2Session: camelCase session times, no `debug_on_failure` or `ims_job`; the same extensions. */
export const v2SessionSchema = z.object({
  name: z.string(),
  configuration: z.object({ name: z.string(), limit: z.string() }),
  ansible: z.object({ config: z.string(), limit: z.string(), verbosity: z.int().min(0).max(4), passthrough: z.string() }),
  target: targetSchema,
  tags: z.record(z.string(), z.string()),
  status: z.object({
    session: z.object({
      job: z.string().optional(),
      startTime: rfc3339,
      completionTime: rfc3339.nullable(),
      status: sessionStatus,
      succeeded: sessionSucceeded,
    }),
    artifacts: z.array(artifactSchema),
    ...statusExtensions,
  }),
});
same<z.output<typeof v2SessionSchema>, ReturnType<typeof sessionToV2>>(true);

/** V3NextData: every query parameter of the request, `after_id` moved on; null on the last page. */
export const nextPageSchema = z
  .object({
    limit: z.int().min(1),
    after_id: z.string(),
    search_stopped_early: z
      .literal(true)
      .optional()
      .meta({ description: 'Present when a filtered listing stopped searching (its time budget ran out) before finding limit matches: more may or may not match; following next searches on from after_id.' }),
  })
  .catchall(z.union([z.string(), z.number()]))
  .nullable()
  .meta({ description: 'The query of the next page (every parameter of this request, `after_id` moved on), or null on the last page.' });

export const v3SessionCollectionSchema = z.object({ sessions: z.array(v3SessionSchema), next: nextPageSchema });
export const v3SessionIdCollectionSchema = z.object({ session_ids: z.array(z.string()).meta({ description: 'The sessions deleted, in name order.' }) });

const v3LayerView = z.object({
  name: z.string().optional(),
  clone_url: z.string().optional().meta({ description: 'The repository (absent when the layer names a source).' }),
  source: z.string().optional().meta({ description: 'The CFS v3 source whose clone URL and credentials the layer uses.' }),
  playbook: z.string(),
  commit: z.string(),
  branch: z.string().optional(),
  special_parameters: z.object({ ims_require_dkms: z.boolean().optional() }).optional(),
});

/** V3ConfigurationData as stored (every branch resolved to a commit). */
export const v3ConfigurationSchema = z.object({
  name: z.string(),
  description: z.string().optional(),
  last_updated: rfc3339,
  layers: z.array(v3LayerView),
  additional_inventory: z
    .object({ name: z.string().optional(), clone_url: z.string().optional(), source: z.string().optional(), commit: z.string(), branch: z.string().optional() })
    .optional(),
});
same<z.output<typeof v3ConfigurationSchema>, ReturnType<typeof configurationToV3>>(true);

/** V2Configuration. */
export const v2ConfigurationSchema = z.object({
  name: z.string(),
  description: z.string().optional(),
  lastUpdated: rfc3339,
  layers: z.array(
    z.object({
      name: z.string().optional(),
      cloneUrl: z.string(),
      playbook: z.string(),
      commit: z.string(),
      branch: z.string().optional(),
      specialParameters: z.object({ imsRequireDkms: z.boolean().optional() }).optional(),
    }),
  ),
  additional_inventory: z.object({ name: z.string().optional(), cloneUrl: z.string(), commit: z.string(), branch: z.string().optional() }).optional(),
});
same<z.output<typeof v2ConfigurationSchema>, ReturnType<typeof configurationToV2>>(true);

export const v3ConfigurationCollectionSchema = z.object({ configurations: z.array(v3ConfigurationSchema), next: nextPageSchema });

/** IMS ImageRecord as the API shows it (`toImageView`). */
export const imageViewSchema = z.object({
  id: z.string().meta({ description: 'UUID, assigned by the server.' }),
  created: rfc3339,
  name: z.string(),
  link: imageLinkSchema.optional(),
  arch: z.enum(IMAGE_ARCHES),
  metadata: z.record(z.string(), z.string()),
});

export const imageManifestSchema = manifestSchema;
same<z.output<typeof imageManifestSchema>, ImageManifest>(true);

export const uploadUrlSchema = z.object({
  artifact: z.enum(ARTIFACT_NAMES),
  key: z.string(),
  method: z.literal('PUT'),
  url: z.string().meta({ description: 'PUT the bytes here (a presigned S3 URL, or the embedded server\'s signed artifact URL).' }),
  expires_at: rfc3339,
});
same<z.output<typeof uploadUrlSchema>, UploadUrl>(true);

export const downloadUrlSchema = z.object({
  artifact: z.enum(ARTIFACT_NAMES),
  key: z.string(),
  method: z.literal('GET'),
  url: z.string(),
  expires_at: rfc3339,
  type: z.string(),
  size: z.int().min(0),
  md5: z.string(),
  sha256: z.string(),
});
same<z.output<typeof downloadUrlSchema>, DownloadUrl>(true);

/** What the embedded artifact endpoint answers to a PUT: what the store measured while writing. */
export const storedObjectSchema = z.object({ key: z.string(), size: z.int().min(0), md5: z.string(), sha256: z.string(), etag: z.string() });
same<z.output<typeof storedObjectSchema>, StoredObject>(true);

/** RFC 7807 problem details, every error's body (`application/problem+json`). */
export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.int(),
  detail: z.string(),
  instance: z.string().optional(),
  field: z.string().optional().meta({ description: 'Extension: the offending field or query parameter, when one is to blame.' }),
});
same<z.output<typeof problemSchema>, Problem>(true);

/** `GET /v3/sessions/{name}/logs`: a chunk of the Ansible logs and the cursor to continue from. */
export const sessionLogChunkSchema = z.object({
  session: z.string(),
  layers: z.array(
    z.object({ index: z.int().min(0), name: z.string(), state: z.enum(['pending', 'running', 'succeeded', 'failed', 'skipped', 'cached']), log_key: z.string() }),
  ),
  tests: z
    .array(
      z.object({
        test: z.string().meta({ description: 'What `test=` takes to read this log alone: `IMAGE_ID/check-NAME` or `IMAGE_ID/boot-console`.' }),
        image_id: z.string(),
        check: z.string().optional(),
        boot: z.boolean().optional(),
        state: z.enum(['pending', 'running', 'succeeded', 'failed', 'skipped', 'cached']),
        log_key: z.string(),
      }),
    )
    .meta({ description: "Each image's test logs (its checks' output, its boot test's serial console), in the order they are followed; empty without validation." }),
  layer: z.int().min(0).optional(),
  test: z.string().optional(),
  text: z.string(),
  cursor: z.string().meta({ description: 'Pass back as `cursor` to get what follows.' }),
  complete: z.boolean().meta({ description: 'True once nothing more will be appended to what this request covers.' }),
});
same<z.output<typeof sessionLogChunkSchema>, SessionLogChunk>(true);

const planChangeSchema = z.object({
  kind: z.enum(['first_build', 'new_source', 'source_rootfs', 'layer_commit', 'layer_changed', 'layer_added', 'layer_removed', 'layer_order', 'settings', 'runner', 'unexplained']),
  text: z.string(),
  layer: z.string().optional(),
  from: z.string().optional(),
  to: z.string().optional(),
  branch: z.string().optional(),
});

const plannedLayerSchema = z.object({
  name: z.string(),
  clone_url: z.string(),
  playbook: z.string(),
  commit: z.string(),
  branch: z.string().optional(),
  pinned_commit: z.string().optional(),
  branch_head: z.string().optional(),
});

const buildSettingsSchema = z.object({ ansible_limit: z.string(), ansible_passthrough: z.string(), configuration_limit: z.string(), groups: z.array(z.string()) });
const builtImageSchema = z.object({ id: z.string(), name: z.string() });

/** What an automation would do now and why (nothing is written). */
export const automationPlanSchema = z.object({
  automation: z.string(),
  configuration: z.string(),
  trigger: z.enum(['image_registered', 'schedule', 'run', 'plan']),
  action: z.enum(['build', 'skip', 'fail']),
  reasons: z.array(z.string()),
  changes: z.array(planChangeSchema),
  fingerprint: z.string().optional(),
  source: z.object({ id: z.string(), name: z.string(), arch: z.enum(IMAGE_ARCHES), created: z.string(), rootfs_sha256: z.string() }).optional(),
  layers: z.array(plannedLayerSchema).optional(),
  settings: buildSettingsSchema.optional(),
  result_name: z.string().optional(),
  session_name: z.string().optional(),
  already_built: z.array(builtImageSchema).optional(),
  configuration_moved: z.boolean(),
});
same<z.output<typeof automationPlanSchema>, AutomationPlan>(true);

export const automationPlanNowSchema = automationPlanSchema.extend({ git_calls: z.int().min(0) });

const automationTrigger = z.enum(['image_registered', 'schedule', 'run']);

/** An automation as stored (its spec, last build and history) and, for a cron schedule, its next run. */
export const automationSchema = z.object({
  name: z.string(),
  created: rfc3339,
  last_updated: rfc3339,
  configuration_name: z.string(),
  source: z.object({
    name_pattern: z.string(),
    arch: z.enum(IMAGE_ARCHES).optional(),
    include_automation_results: z.boolean().optional().meta({ description: "Results of other automations may be sources (never this automation's own)." }),
  }),
  groups: z.array(z.string()),
  result_name_template: z.string(),
  on_image_registered: z.boolean(),
  schedule: z.object({ expression: z.string(), timezone: z.string() }).optional(),
  only_if_changed: z.boolean(),
  configuration_limit: z.string(),
  ansible_limit: z.string(),
  ansible_config: z.string(),
  ansible_verbosity: z.int().min(0).max(4),
  ansible_passthrough: z.string(),
  debug_on_failure: z.boolean(),
  validation: validationViewSchema,
  layer_cache: z.boolean().optional().meta({ description: 'false: every session it starts is a full run (no layer reused from the layer cache).' }),
  last_build: z
    .object({
      time: z.string(),
      session: z.string(),
      fingerprint: z.string(),
      source: z.object({ id: z.string(), name: z.string(), rootfs_sha256: z.string() }),
      layers: z.array(z.object({ name: z.string(), clone_url: z.string(), commit: z.string(), playbook: z.string(), branch: z.string().optional() })),
      settings: buildSettingsSchema,
      runner_version: z.string(),
    })
    .optional(),
  history: z.array(
    z.object({
      time: z.string(),
      trigger: automationTrigger,
      outcome: z.enum(['started', 'skipped', 'failed']),
      reason: z.string(),
      session: z.string().optional(),
      source_image_id: z.string().optional(),
      source_name: z.string().optional(),
      fingerprint: z.string().optional(),
      repeated: z.int().min(1).optional(),
      last_time: z.string().optional(),
    }),
  ),
  next_run: rfc3339.optional().meta({ description: 'When a cron schedule fires next.' }),
});
same<z.output<typeof automationSchema>, ReturnType<typeof automationView>>(true);

export const automationCollectionSchema = z.object({ automations: z.array(automationSchema) });

/** `POST /v3/automations/{name}/run`: what the one evaluation did, and its git calls. */
export const automationRunSchema = z.object({
  automation: z.string(),
  trigger: automationTrigger,
  outcome: z.enum(['started', 'skipped', 'failed']),
  reason: z.string(),
  session: z.string().optional(),
  plan: automationPlanSchema.optional(),
  git_calls: z.int().min(0),
});
same<z.output<typeof automationRunSchema>, AutomationRunResult & { git_calls: number }>(true);

/** `POST /v3/sessions/plan`: what a session create would build, per source image, and why. */
export const sessionPlanSchema = z.object({
  session: z.string(),
  configuration: z.string(),
  layers: z.array(plannedLayerSchema),
  notes: z.array(z.string()),
  images: z.array(
    z.object({
      image_id: z.string(),
      ready: z.boolean(),
      source_name: z.string().optional(),
      rootfs_sha256: z.string().optional(),
      groups: z.array(z.string()),
      result_name: z.string().optional(),
      fingerprint: z.string().optional(),
      already_built: z.array(builtImageSchema),
      reasons: z.array(z.string()),
      changes: z.array(planChangeSchema),
    }),
  ),
  git_calls: z.int().min(0),
});
same<z.output<typeof sessionPlanSchema>, SessionPlan>(true);

const versionPart = z.string().regex(/^(0|[1-9][0-9]*)$/);
/** CFS's `Version` (closed, as upstream): this product's release (core/service/service-version.ts), not a CFS version. */
export const versionSchema = z
  .strictObject({ major: versionPart, minor: versionPart, patch: versionPart })
  .meta({ description: "This product's release (package.json), not a version of HPE's CFS." });
same<z.output<typeof versionSchema>, ServiceVersion>(true);

/** CFS's `Healthz` (closed, as upstream): `db_status` is this product's stores, `kafka_status` its workflow engine. */
export const healthzSchema = z
  .strictObject({
    db_status: z.string().meta({ description: 'The table and the artifact store: ok, or not_available.' }),
    kafka_status: z.string().meta({ description: 'The workflow engine (there is no Kafka here): ok, not_available, or not_checked.' }),
  })
  .meta({ description: 'Each part: ok, not_available (failed or did not answer within 5 s), or not_checked.' });

/** IMS's readiness and liveness answers: `{}` when ready, `{stores: "not_available"}` when not. */
export const imsHealthSchema = z.strictObject({ stores: z.string().optional() });
