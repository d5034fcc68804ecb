import { z } from 'zod';

/** IMS image architectures; `x86_64` is the IMS default. */
export const IMAGE_ARCHES = ['x86_64', 'aarch64'] as const;

/** The artifacts an image can carry, by their IMS object names. */
export const ARTIFACT_NAMES = ['rootfs', 'kernel', 'initrd', 'boot_parameters'] as const;
export type ArtifactName = (typeof ARTIFACT_NAMES)[number];

// Control characters make names unprintable in listings and unsafe in file names.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
/** An image name's characters: no '/', no control characters, not '.' or '..'. */
export const IMAGE_NAME_PATTERN = /^(?!\.\.?$)[^/\u0000-\u001f\u007f]+$/;

/**
 * An IMS image name: 1-255 characters, no '/', no control characters, not '.' or '..'. The
 * same rule CFS applies to a session's result names, so any result name it accepts registers.
 */
export const imageNameSchema = z
  .string({ error: 'name must be a string' })
  .min(1, 'name must not be empty')
  .max(255, 'name must be at most 255 characters')
  .refine((name) => !name.includes('/'), 'name must not contain "/"')
  .refine((name) => !CONTROL_CHARACTERS.test(name), 'name must not contain control characters')
  .refine((name) => name !== '.' && name !== '..', 'name must not be "." or ".."')
  // The three refinements as one pattern, which the OpenAPI document states.
  .regex(IMAGE_NAME_PATTERN, 'name must not contain "/" or control characters, nor be "." or ".."');

/**
 * Metadata keys the workflow writes on the images it registers (lineage, input fingerprint,
 * automation): the automations' loop guard and their "nothing changed" skip read them, so only
 * the workflow sets them (it registers results through the image registry, not through PATCH).
 */
export const LINEAGE_KEY_PREFIX = 'cfs_';

/** True for a metadata key that only the workflow may set or remove. */
export function isLineageKey(key: string): boolean {
  return key.startsWith(LINEAGE_KEY_PREFIX);
}

const lineageKeyDetail = (key: string) => `metadata key '${key}' is reserved: ${LINEAGE_KEY_PREFIX}* keys are the lineage the workflow records`;

export const imageArchSchema = z.enum(IMAGE_ARCHES, { error: `arch must be one of ${IMAGE_ARCHES.join(', ')}` });

/** IMS `ArtifactLinkRecord`. */
export const imageLinkSchema = z.object({
  // keyForLink (manifest.ts) reads only s3:// links: the one form this product's stores name.
  path: z
    .string()
    .min(1, 'link.path must not be empty')
    .regex(/^s3:\/\/.+$/, 'link.path must be an s3:// path (s3://<bucket>/<key>)')
    // The store's key rule (fs-artifact-store.ts assertSafeKey): '/'-separated segments of letters, digits, '.', '_' and '-', none starting with '.'.
    .meta({ pattern: '^s3://[A-Za-z0-9_-][A-Za-z0-9._-]*(?:/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$', maxLength: 1029 }),
  etag: z.string().optional(),
  type: z.string().min(1, 'link.type must not be empty'),
});

/** IMS `ImageCreateRecord`: `id` and `created` are read-only (assigned by the server) and ignored. */
export const imageCreateSchema = z.object({
  name: imageNameSchema,
  arch: imageArchSchema.default('x86_64'),
  link: imageLinkSchema.optional(),
  metadata: z
    .record(z.string(), z.string({ error: 'metadata values must be strings' }))
    .superRefine((metadata, ctx) => {
      const reserved = Object.keys(metadata).find(isLineageKey);
      if (reserved !== undefined) ctx.addIssue({ code: 'custom', message: lineageKeyDetail(reserved), path: [reserved] });
    })
    .optional(),
});
export type ImageCreateInput = z.input<typeof imageCreateSchema>;

/** One metadata patch operation; `set` needs a value. */
export const metadataOperationSchema = z
  .object({
    operation: z.enum(['set', 'remove'], { error: 'metadata operation must be set or remove' }),
    key: z.string().min(1, 'metadata key must not be empty'),
    value: z.string().optional(),
  })
  .refine((op) => op.operation === 'remove' || op.value !== undefined, {
    message: 'a set operation needs a value',
    path: ['value'],
  })
  .superRefine((op, ctx) => {
    if (isLineageKey(op.key)) ctx.addIssue({ code: 'custom', message: lineageKeyDetail(op.key), path: ['key'] });
  });
export type MetadataOperation = z.infer<typeof metadataOperationSchema>;

/**
 * IMS `ImagePatchRecord`. `metadata` is a list of operations; a single operation object (as the
 * spec draws it) is accepted too and read as a list of one.
 */
export const imagePatchSchema = z
  .object({
    link: imageLinkSchema.optional(),
    arch: imageArchSchema.optional(),
    metadata: z
      .union([metadataOperationSchema, z.array(metadataOperationSchema)])
      .transform((ops) => (Array.isArray(ops) ? ops : [ops]))
      .optional(),
  })
  .refine((patch) => patch.link !== undefined || patch.arch !== undefined || patch.metadata !== undefined, {
    message: 'no input provided: give at least one of link, arch, metadata',
  })
  .meta({ minProperties: 1 });
export type ImagePatchInput = z.input<typeof imagePatchSchema>;

const hex = (length: number, what: string) =>
  z.string().regex(new RegExp(`^[a-f0-9]{${length}}$`), `${what} must be ${length} lowercase hex digits`);

/** One artifact of an IMS `manifest.json` (IMS writes `link`, `type`, `md5`; this product adds `sha256` and `size`). */
export const manifestArtifactSchema = z.object({
  link: imageLinkSchema,
  type: z.string().min(1),
  md5: hex(32, 'md5'),
  sha256: hex(64, 'sha256'),
  size: z.number().int().nonnegative(),
});

/** `<bucket>/<image id>/manifest.json`. */
export const manifestSchema = z.object({
  version: z.literal('1.0'),
  created: z.string(),
  artifacts: z.array(manifestArtifactSchema),
});

/** What an uploader reports for one artifact it put at the image's upload URL (checksums measured while streaming). */
export const uploadedArtifactSchema = z.object({
  name: z.enum(ARTIFACT_NAMES, { error: `artifact name must be one of ${ARTIFACT_NAMES.join(', ')}` }),
  size: z.number().int().nonnegative(),
  md5: hex(32, 'md5'),
  sha256: hex(64, 'sha256'),
});

/** The body of `PUT /apis/ims/v3/images/{id}/manifest`: the artifacts uploaded for the image. */
export const manifestRegistrationSchema = z.object({
  artifacts: z
    .array(uploadedArtifactSchema)
    .min(1, 'artifacts must list at least one artifact')
    .refine((list) => new Set(list.map((a) => a.name)).size === list.length, 'artifacts must not name an artifact twice'),
});
export type ManifestRegistrationInput = z.input<typeof manifestRegistrationSchema>;

/** The optional body of the upload-url request: `expires_in` at most the deployment's upload URL lifetime (longer asks get that). */
export const uploadUrlRequestSchema = z.object({
  expires_in: z.number().int().min(1, 'expires_in must be at least 1 second').max(604_800, 'expires_in must be at most 604800 seconds').optional(),
});

/** The optional body of the download-url request (and of the upload-url one before staged uploads). */
export const artifactUrlRequestSchema = z.object({
  expires_in: z
    .number()
    .int()
    .min(1, 'expires_in must be at least 1 second')
    .max(604_800, 'expires_in must be at most 604800 seconds (7 days, the S3 presign limit)')
    .default(3600),
});
