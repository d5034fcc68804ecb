import { z } from 'zod';

/**
 * The CFS configuration documents, v3 (snake_case, what is stored) and v2 (camelCase), closed
 * as the spec closes them. `cray cfs configurations update` passes a file through unconverted,
 * so both endpoints accept both spellings: see normalizeConfigurationBody.
 */

export const COMMIT_PATTERN = /^[a-f0-9]{40}$/;
/** CFS's pattern for clone URLs, playbooks and branches. */
export const NO_SPACE_PATTERN = /^[^\s;]*$/;

const commit = z.string().regex(COMMIT_PATTERN, 'must be a 40-character lowercase hex commit id');
const branch = z.string().min(1, 'must not be empty').regex(NO_SPACE_PATTERN, "must not contain whitespace or ';'");
const cloneUrl = z
  .string()
  .min(1, 'must not be empty')
  .regex(NO_SPACE_PATTERN, "must not contain whitespace or ';'")
  .meta({ description: "A git clone URL whose scheme is one of the deployment's clone_url_schemes setting (https, ssh and file unless set)." });
// checkPlaybook (configuration-rules.ts) also keeps it inside the repository: relative, no '..' segment; the pattern states both.
const playbook = z
  .string()
  .min(1, 'must not be empty')
  .regex(NO_SPACE_PATTERN, "must not contain whitespace or ';'")
  .meta({ pattern: '^(?!/)(?!(?:.*/)?\\.\\.(?:/|$))[^\\s;]*$' });
const layerName = z.string().min(1, 'must not be empty').max(45, 'must be at most 45 characters');

/** V3ConfigurationLayer: exactly one of `clone_url` and `source` (a CFS v3 source's name), checked by the rules. */
export const v3LayerSchema = z.strictObject({
  name: layerName.optional(),
  clone_url: cloneUrl.optional(),
  source: z.string().optional(),
  playbook,
  commit: commit.optional(),
  branch: branch.optional(),
  special_parameters: z.strictObject({ ims_require_dkms: z.boolean().optional() }).optional(),
});

/** V3AdditionalInventoryLayer. */
export const v3AdditionalInventorySchema = z.strictObject({
  name: layerName.optional(),
  clone_url: cloneUrl.optional(),
  source: z.string().optional(),
  commit: commit.optional(),
  branch: branch.optional(),
});

/** PUT `/apis/cfs/v3/configurations/{name}` (V3ConfigurationData); read-only fields are accepted and replaced. */
export const v3ConfigurationSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  tenant_name: z.string().optional().meta({ maxLength: 0, description: 'Multi-tenancy is not served: absent or empty.' }),
  last_updated: z.string().optional(),
  layers: z.array(v3LayerSchema).default([]),
  additional_inventory: v3AdditionalInventorySchema.optional(),
});

/** V2ConfigurationLayer. */
export const v2LayerSchema = z.strictObject({
  name: layerName.optional(),
  cloneUrl,
  playbook: playbook.optional(),
  commit: commit.optional(),
  branch: branch.optional(),
  specialParameters: z.strictObject({ imsRequireDkms: z.boolean().optional() }).optional(),
});

/** V2Configuration. */
export const v2ConfigurationSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  lastUpdated: z.string().optional(),
  layers: z.array(v2LayerSchema).default([]),
  additional_inventory: z
    .strictObject({ name: layerName.optional(), cloneUrl, commit: commit.optional(), branch: branch.optional() })
    .optional(),
});

export type V3ConfigurationInput = z.input<typeof v3ConfigurationSchema>;
export type V3ConfigurationRequest = z.output<typeof v3ConfigurationSchema>;
export type V2ConfigurationInput = z.input<typeof v2ConfigurationSchema>;
