import { z } from 'zod';
import { validationSpecSchema } from '../sessions/validation-spec.ts';

/**
 * The runner's contract with the control plane. render-inventory writes a run document to the
 * artifact store; the runner reads it, does the byte work and writes an outcome document back
 * (in AWS an ECS failure reaches Step Functions only as `States.TaskFailed`, so the outcome is
 * how the workflow learns which layer or image failed and what was uploaded).
 */

/** Keys are `bucket/path` segments the stores accept (no `..`, no empty segment). */
const storeKey = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'must be a store key: segments of A-Z a-z 0-9 . _ - joined by /')
  .refine((key) => !key.split('/').some((s) => s === '.' || s === '..'), 'must not contain . or .. segments');

const storePrefix = z
  .string()
  .regex(/^([A-Za-z0-9._-]+\/)+$/, 'must be a store key prefix ending in /')
  .refine((key) => !key.split('/').some((s) => s === '.' || s === '..'), 'must not contain . or .. segments');

const artifactRef = z.object({
  key: storeKey,
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256'),
});

/** Image ids are inventory host names and path segments, so they are held to UUID-like names. */
const imageId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be an id of letters, digits, . _ -');

export const COMPRESSORS = ['gzip', 'xz', 'lzo', 'lz4', 'zstd'] as const;
export type Compressor = (typeof COMPRESSORS)[number];

export const runImageSchema = z.object({
  image_id: imageId,
  source_name: z.string().min(1),
  arch: z.enum(['x86_64', 'aarch64']),
  rootfs: artifactRef,
  kernel: artifactRef.optional(),
  initrd: artifactRef.optional(),
  result_name: z.string().min(1),
  result_id: imageId,
  upload_prefix: storePrefix,
});

export const runLayerSchema = z.object({
  index: z.number().int().nonnegative(),
  name: z.string().min(1),
  clone_url: z.string().min(1).refine((url) => !url.startsWith('-'), 'must not start with -'),
  commit: z.string().regex(/^([0-9a-f]{40}|[0-9a-f]{64})$/, 'must be a full commit id'),
  playbook: z
    .string()
    .min(1)
    .refine((p) => !p.startsWith('/') && !p.startsWith('-') && !p.split('/').includes('..'), 'must be a path inside the repository'),
  /**
   * A CFS v3 source: the runner fetches with the login kept under `secret_name` (handed to that
   * one git process, outside the layer's sandbox) and trusts `ca_pem`. Never the secret itself.
   */
  source: z
    .object({
      name: z.string().min(1),
      secret_name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/, 'must be a secret name of letters, digits, - and _'),
      ca_pem: z.string().max(256 * 1024).optional(),
    })
    .optional(),
});

export const runDocumentSchema = z
  .object({
    session: z.string().min(1),
    images: z.array(runImageSchema).min(1),
    inventory: z.looseObject({ all: z.looseObject({ children: z.record(z.string(), z.unknown()) }) }),
    layers: z.array(runLayerSchema).min(1),
    ansible: z.object({
      limit: z
        .string()
        .regex(/^[^\s;]*$/, 'must not contain spaces or ;')
        // Ansible reads a limit part starting with '@' as a file of host names.
        .refine((limit) => !limit.includes('@') && !limit.startsWith('-'), "must not contain '@' (a file) or start with '-'"),
      verbosity: z.number().int().min(0).max(4),
      passthrough: z.array(z.string()),
    }),
    squashfs: z.object({
      compressor: z.enum(['source', ...COMPRESSORS]),
      level: z.number().int().min(1).max(22).optional(),
    }),
    allowed_schemes: z.array(z.string().regex(/^[a-z][a-z0-9+.-]*$/)).min(1),
    outcome_key: storeKey,
    logs_prefix: storePrefix,
    /** Where the runner records which layer runs now (rewritten as each layer starts and ends), for live progress. */
    progress_key: storeKey.optional(),
    /** `debug_on_failure`: when a layer fails, keep the workspace (roots, inventory, clones) and describe it in the outcome. */
    debug_hold: z.boolean().optional(),
    /** The session's validation (issue 18): checks in each customized root before packing, a boot of each packed result. Absent: neither. */
    validation: validationSpecSchema.optional(),
    /** The run's time budget: past it the runner stops as on SIGTERM (cleaning up), with a reason saying the budget ran out. */
    timeout_seconds: z.number().int().positive().max(86_400).optional(),
    /**
     * The workflow execution (`status.session.job`) of the session this run belongs to: a session
     * created again under the same name never takes an earlier one's document (its logs) for its own.
     */
    job: z.string().min(1).max(2048).optional(),
    /**
     * The layer cache (issue 19): each layer's change set is recorded under a key chained over
     * what decides its outcome; with `reuse`, entries younger than `max_age_seconds` start an
     * image from the source plus the cached change sets. Absent: nothing recorded or reused.
     */
    layer_cache: z
      .object({
        reuse: z.boolean(),
        max_age_seconds: z.number().int().nonnegative(),
      })
      .optional(),
  })
  .superRefine((doc, ctx) => {
    const ids = doc.images.map((i) => i.image_id);
    if (new Set(ids).size !== ids.length) ctx.addIssue({ code: 'custom', path: ['images'], message: 'image ids must be unique' });
    const results = doc.images.map((i) => i.result_id);
    if (new Set(results).size !== results.length) ctx.addIssue({ code: 'custom', path: ['images'], message: 'result ids must be unique' });
    const indices = doc.layers.map((l) => l.index);
    if (new Set(indices).size !== indices.length) ctx.addIssue({ code: 'custom', path: ['layers'], message: 'layer indices must be unique' });
    const { compressor, level } = doc.squashfs;
    if (level !== undefined && (compressor === 'xz' || compressor === 'lz4')) {
      ctx.addIssue({ code: 'custom', path: ['squashfs', 'level'], message: `mksquashfs takes no compression level for ${compressor}` });
    }
    if (level !== undefined && (compressor === 'gzip' || compressor === 'lzo') && level > 9) {
      ctx.addIssue({ code: 'custom', path: ['squashfs', 'level'], message: `${compressor} levels are 1 to 9` });
    }
  });

export type RunDocument = z.infer<typeof runDocumentSchema>;
export type RunImage = z.infer<typeof runImageSchema>;
export type RunLayer = z.infer<typeof runLayerSchema>;

const uploadedArtifact = z.object({
  key: z.string(),
  size: z.number(),
  md5: z.string(),
  sha256: z.string(),
});

const bootArtifact = uploadedArtifact.extend({ from: z.enum(['customized', 'source']) });

/** Start, end and duration of one piece of an image's test. */
const timed = {
  state: z.enum(['succeeded', 'failed']),
  start_time: z.string(),
  end_time: z.string(),
  duration_ms: z.number(),
  /** Its output (a check's stdout and stderr, the VM's serial console) in the store. */
  log_key: z.string(),
  /** One line saying why it failed. */
  reason: z.string().optional(),
};

/** What the runner proved of one image (issue 18): each check in its customized root, then the boot of its packed result. */
export const imageTestsSchema = z.object({
  checks: z.array(z.object({ name: z.string(), exit_code: z.number().nullable(), ...timed })),
  boot: z
    .object({
      accelerator: z.enum(['kvm', 'tcg']),
      /** Why that accelerator (the KVM probe's finding). */
      accelerator_reason: z.string(),
      /** The console line that matched the success pattern. */
      matched_line: z.string().optional(),
      ...timed,
    })
    .optional(),
});

export const runOutcomeSchema = z.object({
  session: z.string(),
  status: z.enum(['succeeded', 'failed']),
  reason: z.string().optional(),
  failed_layer: z.string().optional(),
  failed_image: z.string().optional(),
  /** `test` when an image failed its checks or boot test (the run's layers all succeeded). */
  failed_step: z.enum(['test']).optional(),
  started: z.string(),
  finished: z.string(),
  images: z.array(
    z.object({
      image_id: z.string(),
      result_id: z.string(),
      result_name: z.string(),
      staged: z.boolean(),
      customized: z.boolean(),
      uploaded: z.object({ rootfs: uploadedArtifact, kernel: bootArtifact.optional(), initrd: bootArtifact.optional() }).optional(),
      compressor: z.string().optional(),
      tests: imageTestsSchema.optional(),
      /** Each layer's cache key for this image (issue 19): where its change set and its changes report are kept. */
      layer_keys: z.array(z.object({ index: z.number(), key: z.string().regex(/^[0-9a-f]{64}$/) })).optional(),
    }),
  ),
  layers: z.array(
    z.object({
      index: z.number(),
      name: z.string(),
      exit_code: z.number().nullable(),
      duration_ms: z.number(),
      log_key: z.string(),
      state: z.enum(['succeeded', 'failed', 'skipped', 'cached']),
      /** A `cached` layer: the session that recorded the reused change set(s) and when (the oldest, with several images). */
      cached: z.object({ session: z.string(), created: z.string() }).optional(),
    }),
  ),
  debug: z
    .object({
      /** The kept workspace, removed when the hold ends. */
      workspace: z.string(),
      inventory: z.string(),
      /** Each unpacked image root, with a command that enters it (in the run's sandbox when it had one). */
      images: z.array(z.object({ image_id: z.string(), root: z.string(), enter: z.string() })),
      /** Each layer's clone, with the exact command that reruns it by hand. */
      layers: z.array(z.object({ index: z.number(), name: z.string(), directory: z.string(), command: z.string() })),
    })
    .optional(),
});

export type RunOutcome = z.infer<typeof runOutcomeSchema>;
export type DebugHoldDetails = NonNullable<RunOutcome['debug']>;

/** States of a layer in the progress document. */
export const LAYER_PROGRESS_STATES = ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cached'] as const;

/**
 * The runner's progress document at `progress_key`: every layer's state and times, rewritten as
 * each layer starts and ends (the outcome is written only at the end).
 */
export const runProgressSchema = z.object({
  session: z.string(),
  updated: z.string(),
  /** Each image's test (with validation only), as it runs: checks before packing, the boot after. */
  tests: z
    .array(
      z.object({
        image_id: z.string(),
        state: z.enum(LAYER_PROGRESS_STATES),
        start_time: z.string().optional(),
        end_time: z.string().optional(),
        checks: z.array(z.object({ name: z.string(), state: z.enum(LAYER_PROGRESS_STATES), start_time: z.string().optional(), end_time: z.string().optional(), duration_ms: z.number().optional() })),
        boot: z
          .object({ state: z.enum(LAYER_PROGRESS_STATES), accelerator: z.enum(['kvm', 'tcg']).optional(), start_time: z.string().optional(), end_time: z.string().optional(), duration_ms: z.number().optional() })
          .optional(),
      }),
    )
    .optional(),
  layers: z.array(
    z.object({
      index: z.number(),
      name: z.string(),
      state: z.enum(LAYER_PROGRESS_STATES),
      start_time: z.string().optional(),
      end_time: z.string().optional(),
      /** A `cached` layer: the session that recorded the reused change set (as in the outcome), shown while the run goes on. */
      cached: z.object({ session: z.string(), created: z.string() }).optional(),
    }),
  ),
});

export type RunProgress = z.infer<typeof runProgressSchema>;
export type TestProgress = NonNullable<RunProgress['tests']>[number];
export type ImageTests = z.infer<typeof imageTestsSchema>;
export type UploadedArtifact = z.infer<typeof uploadedArtifact>;
export type BootArtifact = z.infer<typeof bootArtifact>;

/** What is wrong with a run document, one readable line per problem (empty when it is valid). */
export function runDocumentProblems(value: unknown): string[] {
  const result = runDocumentSchema.safeParse(value);
  if (result.success) return [];
  return result.error.issues.map((issue) => `${issue.path.join('.') || '(document)'}: ${issue.message}`);
}
