import { z } from 'zod';

/**
 * The request bodies of `/apis/cfs/v3/sources`, closed as the spec closes them
 * (V3SourceCreateData, V3SourceUpdateData, V3SourceRestoreData). One addition: `ca_cert.pem`,
 * the CA bundle itself, since this service has no Kubernetes configmaps to name.
 */

/**
 * What a source name may not hold: control characters (C0, DEL, C1), line and paragraph
 * separators, and the format characters that hide or reorder text (soft hyphen, zero-width and
 * bidi controls, BOM), since a name is a key and a word in messages. Stated without Unicode
 * property classes so the OpenAPI document's pattern says exactly the same.
 */
export const NOT_IN_A_SOURCE_NAME = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/;

/** A source name (the body's `name`, the path's `{source_id}`): 1 to 1024 characters, none of NOT_IN_A_SOURCE_NAME. */
export const sourceNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(1024, 'must be at most 1024 characters')
  .regex(new RegExp(`^[^${NOT_IN_A_SOURCE_NAME.source.slice(1, -1)}]*$`), 'must not contain control characters, line breaks or invisible format characters')
  .meta({ description: 'The source name: 1 to 1024 characters, no control, line-separator or invisible format characters.' });

/** The names both secret stores take (a file of the secret directory; a secret under the stack's prefix). */
export const SOURCE_SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

const cloneUrl = z
  .string()
  .min(1, 'must not be empty')
  // One pattern (the OpenAPI document states only one): http(s), no login, no whitespace or ';'.
  .regex(/^[hH][tT][tT][pP][sS]?:\/\/[^/@\s;]+(\/[^\s;]*)?$/, "must be an http(s) URL without a user name or password, whitespace or ';' (a source logs in with its credentials, over HTTP(S) only)")
  .meta({ description: "The repository, http(s) and without a login (the service's clone URL schemes apply)." });
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** V3SourceCert plus `pem`; `null` (update) removes it. */
export const sourceCertSchema = z.strictObject({
  configmap_name: z.string().min(1, 'must not be empty'),
  configmap_namespace: z.string().optional(),
  // Required: this service has no configmaps, so the bundle itself comes with the request.
  pem: z
    .string({ error: (issue) => (issue.input === undefined ? 'this service has no configmaps: give the CA bundle itself as ca_cert.pem (PEM text)' : undefined) })
    .max(256 * 1024, 'must be at most 256 KiB')
    .regex(PEM_CERTIFICATE, 'must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----)')
    .meta({ description: 'Extension: the CA bundle (PEM), kept with the source and never answered; CFS names a configmap instead.' }),
});

/** V3SourceCreateCredentials. */
export const sourceCreateCredentialsSchema = z.strictObject({
  authentication_method: z.literal('password', { error: "must be 'password'" }).default('password'),
  username: z.string().min(1, 'must not be empty'),
  password: z.string().min(1, 'must not be empty'),
});

/** V3SourceCreateData. */
export const sourceCreateSchema = z.strictObject({
  name: sourceNameSchema.optional(),
  description: z.string().optional(),
  clone_url: cloneUrl,
  credentials: sourceCreateCredentialsSchema,
  ca_cert: sourceCertSchema.nullable().optional(),
});

/** V3SourceRestoreData (the name comes from the path). */
export const sourceRestoreSchema = z.strictObject({
  description: z.string().optional(),
  clone_url: cloneUrl,
  credentials: z.strictObject({
    authentication_method: z.literal('password', { error: "must be 'password'" }),
    secret_name: z
      .string()
      .regex(SOURCE_SECRET_NAME, 'must be 1 to 128 letters, digits, - or _, starting with a letter or digit')
      .meta({ description: "The secret store's name of the login (both stores: 1 to 128 letters, digits, - or _, starting with a letter or digit)." }),
  }),
  ca_cert: sourceCertSchema.nullable().optional(),
});

/** V3SourceUpdateData: every field optional; `secret_name` is read-only (accepted only unchanged). */
export const sourceUpdateSchema = z.strictObject({
  description: z.string().optional(),
  clone_url: cloneUrl.optional(),
  credentials: z
    .strictObject({
      authentication_method: z.literal('password', { error: "must be 'password'" }).optional(),
      secret_name: z.string().optional(),
      username: z.string().min(1, 'must not be empty').optional(),
      password: z.string().min(1, 'must not be empty').optional(),
    })
    .optional(),
  ca_cert: sourceCertSchema.nullable().optional(),
});

/** `GET /v3/sources`: v3 paging and `in_use`. */
export const sourceListParamsSchema = z.strictObject({
  limit: z.coerce
    .number({ error: 'must be an integer of at least 1' })
    .int('must be an integer of at least 1')
    .min(1, 'must be an integer of at least 1')
    .optional()
    .meta({ description: 'At most this many sources (default: the default_page_size option).' }),
  after_id: z.string().optional().meta({ description: "Only sources whose name sorts after this one (the `after_id` of the previous page's `next`)." }),
  in_use: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .optional()
    .meta({ description: 'true: only sources a configuration names; false: only sources none names.' }),
});

export type SourceCreateRequest = z.output<typeof sourceCreateSchema>;

/** V3SourceData as answered (sourceToV3): the secret's name, never the login; the CA bundle's configmap fields, never its text. */
export const sourceViewSchema = z.object({
  name: z.string(),
  description: z.string().optional(),
  last_updated: z.string(),
  clone_url: z.string(),
  credentials: z.object({
    authentication_method: z.literal('password'),
    secret_name: z.string().meta({ description: "The secret store's name for the login (a file of the data directory, or a Secrets Manager secret under the stack's prefix)." }),
  }),
  ca_cert: z.object({ configmap_name: z.string(), configmap_namespace: z.string().optional() }).optional(),
});

/** V3SourceDataCollection. */
export const sourceCollectionSchema = z.object({
  sources: z.array(sourceViewSchema),
  next: z
    .object({ limit: z.number().int(), after_id: z.string(), in_use: z.string().optional() })
    .nullable()
    .meta({ description: 'The query of the next page, or null on the last page.' }),
});
