import { z } from 'zod';
import { AGE_PATTERN } from '../sessions/age.ts';

/**
 * The CFS options (`GET|PATCH /apis/cfs/v{2,3}/options`): the spec's V3Options where they mean
 * something here, plus this product's own. Three groups:
 *
 * - options that act: `default_page_size` (v3 paging, v2's "too large"), `image_wait_timeout`,
 *   `image_poll_interval`, `squashfs_compressor`, `squashfs_compression_level` and
 *   `clone_url_schemes`, `session_ttl` and `debug_wait_time` (read by the workflow's steps
 *   at run time, through the settings built in workflow-settings.ts);
 * - spec options for CFS parts this product does not have (the batcher, hardware sync,
 *   logging level, v2's default playbook): harmless, so accepted, checked as the spec says and
 *   stored, so scripts written for CSM keep working; they change nothing;
 * - spec options whose other values would promise behaviour that is not there
 *   (`default_ansible_config`, `additional_inventory_url`, `additional_inventory_source`,
 *   `include_ara_links`): only the value this product actually has is accepted.
 *
 * Any other name is a 400.
 */

export const SQUASHFS_COMPRESSORS = ['source', 'gzip', 'xz', 'lzo', 'lz4', 'zstd'] as const;
/** The only Ansible configuration served (there are no ConfigMaps here). */
export const SERVED_ANSIBLE_CONFIG = 'cfs-default-ansible-cfg';

const age = z
  .string()
  .max(10, 'must be at most 10 characters')
  .regex(AGE_PATTERN, 'must be a number followed by m, h, d or w (e.g. 24h, 7d), or empty');
const seconds = (min: number) => z.int('must be an integer').min(min, `must be at least ${min}`);

/** The options that act, each as it may be set (v3 names), with what it does. */
const productFields = {
  session_ttl: age.meta({ description: 'How long a completed session (record and logs) is kept, counted from its completion (e.g. 24h, 7d); empty keeps them. The workflow settings carry it as sessionTtlSeconds.', example: '7d' }),
  debug_wait_time: seconds(0).meta({ description: 'Seconds a failed session with debug_on_failure keeps its workspace for inspection (0: not at all). The workflow settings carry it as debugWaitSeconds.' }),
  default_page_size: seconds(1).meta({ description: 'The page size of v3 listings without `limit`; v2 listings with more results than this are refused (400).' }),
  image_wait_timeout: seconds(1).meta({ description: 'Seconds a session waits for its source images to be registered before it fails.' }),
  image_poll_interval: seconds(1).meta({ description: 'Seconds between checks of a session waiting for images (an Image Registered event ends the wait at once).' }),
  squashfs_compressor: z
    .enum(SQUASHFS_COMPRESSORS, { error: `must be one of ${SQUASHFS_COMPRESSORS.join(', ')}` })
    .meta({ description: "The compressor of result images; `source` keeps the source image's (boot chains must read the result)." }),
  squashfs_compression_level: z
    .int('must be an integer')
    .min(1, 'must be from 1 to 22')
    .max(22, 'must be from 1 to 22')
    .nullable()
    .meta({ description: "The compression level (gzip and lzo 1-9, zstd 1-22, none for xz and lz4; 1-9 with `source`); null for the compressor's default." }),
  clone_url_schemes: z
    .array(z.string().regex(/^[a-z][a-z0-9+.-]*$/, 'must be a lowercase URL scheme'))
    .min(1, 'must name at least one scheme')
    .meta({ description: 'The clone URL schemes layers may use when a session runs: a subset of what this deployment supports (GIT_ALLOW_PROTOCOL names).' }),
};

/** What each option may be set to (v3 names). Every field optional: a PATCH sets only what it names. */
export const v3OptionsPatchSchema = z.strictObject({
  session_ttl: productFields.session_ttl.optional(),
  debug_wait_time: productFields.debug_wait_time.optional(),
  default_page_size: productFields.default_page_size.optional(),
  image_wait_timeout: productFields.image_wait_timeout.optional(),
  image_poll_interval: productFields.image_poll_interval.optional(),
  squashfs_compressor: productFields.squashfs_compressor.optional(),
  squashfs_compression_level: productFields.squashfs_compression_level.optional(),
  clone_url_schemes: productFields.clone_url_schemes.optional(),

  hardware_sync_interval: seconds(1).optional().meta({ description: 'Stored for compatibility; there is no hardware sync agent here.' }),
  batcher_check_interval: seconds(1).optional().meta({ description: 'Stored for compatibility; there is no batcher here.' }),
  batch_size: seconds(1).optional().meta({ description: 'Stored for compatibility; there is no batcher here.' }),
  batch_window: seconds(0).optional().meta({ description: 'Stored for compatibility; there is no batcher here.' }),
  default_batcher_retry_policy: seconds(0).optional().meta({ description: 'Stored for compatibility; there is no batcher here.' }),
  batcher_max_backoff: seconds(0).optional().meta({ description: 'Stored for compatibility; there is no batcher here.' }),
  batcher_disable: z.boolean().optional().meta({ description: 'Stored for compatibility; there is no batcher here.' }),
  batcher_pending_timeout: seconds(1).optional().meta({ description: 'Stored for compatibility; there is no batcher here.' }),
  logging_level: z
    .enum(['DEBUG', 'INFO', 'WARNING', 'ERROR'], { error: 'must be one of DEBUG, INFO, WARNING, ERROR' })
    .optional()
    .meta({ description: 'Stored for compatibility; logging is not changed by it.' }),

  default_ansible_config: z
    .literal(SERVED_ANSIBLE_CONFIG, { error: `only '${SERVED_ANSIBLE_CONFIG}' is served: this service has no named Ansible configurations` })
    .optional(),
  additional_inventory_url: z
    .literal('', { error: 'must be empty: image sessions use only their target groups as inventory here' })
    .optional(),
  additional_inventory_source: z
    .literal('', { error: 'must be empty: image sessions use only their target groups as inventory here' })
    .optional(),
  include_ara_links: z.literal(false, { error: 'must be false: there is no ARA server here' }).optional(),
});

/** v2's deprecated default playbook: writable in v2 only (read-only in v3), stored, unused. */
const defaultPlaybook = z
  .string()
  .regex(/^[^\s;]*$/, "must not contain whitespace or ';'")
  .optional()
  .meta({ description: 'Stored for compatibility (v2 only); layers here always name their playbook.' });

/** What is stored: every option set so far (v3 names), plus v2's default playbook. */
export const storedOptionsSchema = v3OptionsPatchSchema.extend({ default_playbook: defaultPlaybook });
export type StoredOptions = z.output<typeof storedOptionsSchema>;
export type V3OptionsPatch = z.output<typeof v3OptionsPatchSchema>;

/** v3 name -> v2 name, as the spec's V2Options spells them; this product's options in the same camelCase. */
export const V3_TO_V2_OPTION_NAMES: Readonly<Record<keyof StoredOptions, string>> = {
  session_ttl: 'sessionTTL',
  debug_wait_time: 'debugWaitTime',
  default_page_size: 'defaultPageSize',
  image_wait_timeout: 'imageWaitTimeout',
  image_poll_interval: 'imagePollInterval',
  squashfs_compressor: 'squashfsCompressor',
  squashfs_compression_level: 'squashfsCompressionLevel',
  clone_url_schemes: 'cloneUrlSchemes',
  hardware_sync_interval: 'hardwareSyncInterval',
  batcher_check_interval: 'batcherCheckInterval',
  batch_size: 'batchSize',
  batch_window: 'batchWindow',
  default_batcher_retry_policy: 'defaultBatcherRetryPolicy',
  batcher_max_backoff: 'batcherMaxBackoff',
  batcher_disable: 'batcherDisable',
  batcher_pending_timeout: 'batcherPendingTimeout',
  logging_level: 'loggingLevel',
  default_ansible_config: 'defaultAnsibleConfig',
  additional_inventory_url: 'additionalInventoryUrl',
  additional_inventory_source: 'additionalInventorySource',
  include_ara_links: 'includeAraLinks',
  default_playbook: 'defaultPlaybook',
};

/** `PATCH /v2/options`: the same options in v2 spelling, `defaultPlaybook` writable. */
export const v2OptionsPatchSchema = z.strictObject(
  Object.fromEntries(Object.entries(storedOptionsSchema.shape).map(([name, schema]) => [V3_TO_V2_OPTION_NAMES[name as keyof StoredOptions], schema])),
);

/** The options that are always answered (defaults applied). */
export const productOptionsSchema = z.strictObject(productFields);
export type ProductOptions = z.output<typeof productOptionsSchema>;

/** `GET|PATCH /v3/options` answer: every product option, the served facts, and whatever else was stored. */
export const v3OptionsSchema = storedOptionsSchema.extend({
  ...productOptionsSchema.shape,
  default_ansible_config: z.literal(SERVED_ANSIBLE_CONFIG),
  include_ara_links: z.literal(false),
  default_playbook: defaultPlaybook.meta({ readOnly: true }),
});
/** `GET|PATCH /v2/options` answer: the same in v2 spelling. */
export const v2OptionsSchema = z.strictObject(
  Object.fromEntries(Object.entries(v3OptionsSchema.shape).map(([name, schema]) => [V3_TO_V2_OPTION_NAMES[name as keyof StoredOptions], schema])),
);
