import { z } from 'zod';
import { AGE_PATTERN } from '../sessions/age.ts';

/**
 * Two sets of service-wide values, kept in one stored record (v3 names, flat, as before):
 *
 * **The CFS options** (`GET|PATCH /apis/cfs/v{2,3}/options`): exactly the spec's V3Options
 * (snake_case) and V2Options (camelCase, a subset: no `default_page_size`, `debug_wait_time`,
 * `additional_inventory_source` or `include_ara_links`). Both are closed schemas, so an answer
 * holds no other key and a strictly validating generated client reads it. Three groups:
 *
 * - options that act: `default_page_size` (v3 paging, v2's "too large"), `session_ttl` and
 *   `debug_wait_time` (read by the workflow's steps at run time, through the settings built in
 *   workflow-settings.ts);
 * - spec options for CFS parts this product does not have (the batcher, hardware sync,
 *   logging level, v2's default playbook): harmless, so accepted, checked as the spec says and
 *   stored, so scripts written for CSM keep working; they change nothing;
 * - spec options whose other values would promise behaviour that is not there
 *   (`default_ansible_config`, `additional_inventory_url`, `additional_inventory_source`,
 *   `include_ara_links`): only the value this product actually has is accepted.
 *
 * **This product's own settings** (`GET|PATCH /apis/cfs-image/v1/settings`, PRODUCT_SETTINGS_PATH):
 * the image wait, its poll interval, the result compression, the clone URL schemes and the layer
 * cache (issue 19). No CFS client calls that path, so it may grow without a generated CFS client
 * ever seeing a key its schema lacks.
 *
 * Any other name is a 400; a name of the other set is a 400 saying where it lives.
 */

/** Where this product's own settings are read and set (outside `/apis/cfs`, which CFS clients own). */
export const PRODUCT_SETTINGS_PATH = '/apis/cfs-image/v1/settings';
/** Where the CFS options are set (named by the 400 for a CFS option sent to the settings). */
export const CFS_OPTIONS_PATH = '/apis/cfs/v3/options';

/** The layer cache's default maximum age: 7 days (issue 19). */
export const DEFAULT_LAYER_CACHE_MAX_AGE_SECONDS = 7 * 86_400;

export const SQUASHFS_COMPRESSORS = ['source', 'gzip', 'xz', 'lzo', 'lz4', 'zstd'] as const;
/** The only Ansible configuration served (there are no ConfigMaps here). */
export const SERVED_ANSIBLE_CONFIG = 'cfs-default-ansible-cfg';

const age = z
  .string()
  .max(10, 'must be at most 10 characters')
  .regex(AGE_PATTERN, 'must be a number followed by m, h, d or w (e.g. 24h, 7d), or empty');
const seconds = (min: number) => z.int('must be an integer').min(min, `must be at least ${min}`);
const storedOnly = (what: string) => ({ description: `Stored for compatibility; ${what}.` });

/** The spec options that act here, each as it may be set, with what it does. */
const actingOptionFields = {
  session_ttl: age.meta({ description: 'How long a completed session (record and logs) is kept, counted from its completion (e.g. 24h, 7d); empty keeps them. The workflow settings carry it as sessionTtlSeconds.', example: '7d' }),
  debug_wait_time: seconds(0).meta({ description: 'Seconds a failed session with debug_on_failure keeps its workspace for inspection (0: not at all). The workflow settings carry it as debugWaitSeconds.' }),
  default_page_size: seconds(1).meta({ description: 'The page size of v3 listings without `limit`; v2 listings with more results than this are refused (400).' }),
};

/** This product's own settings, each as it may be set, with what it does. */
const settingFields = {
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
  layer_cache: z
    .boolean('must be true or false')
    .meta({ description: "The layer cache (deployment-wide): each layer's change set is recorded and reused by a later session whose first layers match; false records and reuses nothing. A session's own layer_cache: false forces a full run." }),
  layer_cache_max_age_seconds: seconds(0).meta({
    description: 'Seconds a layer cache entry may be reused after it was recorded (default 7 days): older entries are not reused, so layers that install packages pick up updates.',
  }),
  layer_cache_max_bytes: z
    .int('must be an integer')
    .min(0, 'must be at least 0')
    .nullable()
    .meta({
      description:
        "The layer cache's size cap in bytes: past it the least recently used entries are evicted. null: the deployment's cap (the embedded server: 10% of the data directory's filesystem; AWS: the CDK setting layerCacheMaxBytes, default 100 GiB).",
    }),
};

/** `PATCH /v3/options`: V3Options' writable names, each as this product takes it. Every field optional: a PATCH sets only what it names. */
export const v3OptionsPatchSchema = z.strictObject({
  hardware_sync_interval: seconds(1).optional().meta(storedOnly('there is no hardware sync agent here')),
  batcher_check_interval: seconds(1).optional().meta(storedOnly('there is no batcher here')),
  batch_size: seconds(1).optional().meta(storedOnly('there is no batcher here')),
  batch_window: seconds(0).optional().meta(storedOnly('there is no batcher here')),
  default_batcher_retry_policy: seconds(0).optional().meta(storedOnly('there is no batcher here')),
  default_ansible_config: z
    .literal(SERVED_ANSIBLE_CONFIG, { error: `only '${SERVED_ANSIBLE_CONFIG}' is served: this service has no named Ansible configurations` })
    .optional(),
  session_ttl: actingOptionFields.session_ttl.optional(),
  additional_inventory_url: z
    .literal('', { error: 'must be empty: image sessions use only their target groups as inventory here' })
    .optional(),
  additional_inventory_source: z
    .literal('', { error: 'must be empty: image sessions use only their target groups as inventory here' })
    .optional(),
  batcher_max_backoff: seconds(0).optional().meta(storedOnly('there is no batcher here')),
  batcher_disable: z.boolean().optional().meta(storedOnly('there is no batcher here')),
  batcher_pending_timeout: seconds(1).optional().meta(storedOnly('there is no batcher here')),
  logging_level: z
    .enum(['DEBUG', 'INFO', 'WARNING', 'ERROR'], { error: 'must be one of DEBUG, INFO, WARNING, ERROR' })
    .optional()
    .meta(storedOnly('logging is not changed by it')),
  default_page_size: actingOptionFields.default_page_size.optional(),
  debug_wait_time: actingOptionFields.debug_wait_time.optional(),
  include_ara_links: z.literal(false, { error: 'must be false: there is no ARA server here' }).optional(),
});

/** v2's deprecated default playbook: writable in v2 only (read-only in v3), stored, unused. */
const defaultPlaybook = z
  .string()
  .regex(/^[^\s;]*$/, "must not contain whitespace or ';'")
  .optional()
  .meta({ description: 'Stored for compatibility (v2 only); layers here always name their playbook.' });

/** `PATCH /apis/cfs-image/v1/settings`: every setting optional, a PATCH sets only what it names. */
export const settingsPatchSchema = z.strictObject({
  image_wait_timeout: settingFields.image_wait_timeout.optional(),
  image_poll_interval: settingFields.image_poll_interval.optional(),
  squashfs_compressor: settingFields.squashfs_compressor.optional(),
  squashfs_compression_level: settingFields.squashfs_compression_level.optional(),
  clone_url_schemes: settingFields.clone_url_schemes.optional(),
  layer_cache: settingFields.layer_cache.optional(),
  layer_cache_max_age_seconds: settingFields.layer_cache_max_age_seconds.optional(),
  layer_cache_max_bytes: settingFields.layer_cache_max_bytes.optional(),
});

/** The CFS options' names as stored (v3 names, with v2's `default_playbook`). */
export const CFS_OPTION_NAMES: readonly string[] = [...Object.keys(v3OptionsPatchSchema.shape), 'default_playbook'];
/** This product's settings' names. */
export const SETTING_NAMES = Object.keys(settingsPatchSchema.shape) as Array<keyof typeof settingsPatchSchema.shape>;

/**
 * What is stored: one flat record of the CFS options set so far (v3 names, plus v2's default
 * playbook) and this product's settings set so far. The same shape the options record always
 * had, so a record written before the settings had their own path reads unchanged.
 */
export const storedOptionsSchema = v3OptionsPatchSchema.extend({ default_playbook: defaultPlaybook, ...settingsPatchSchema.shape });
export type StoredOptions = z.output<typeof storedOptionsSchema>;
export type V3OptionsPatch = z.output<typeof v3OptionsPatchSchema>;
export type SettingsPatch = z.output<typeof settingsPatchSchema>;
export type CfsOptionName = keyof V3OptionsPatch | 'default_playbook';

/** v3 name -> v2 name, for exactly the options V2Options has. */
export const V3_TO_V2_OPTION_NAMES: Readonly<Partial<Record<CfsOptionName, string>>> = {
  hardware_sync_interval: 'hardwareSyncInterval',
  batcher_check_interval: 'batcherCheckInterval',
  batch_size: 'batchSize',
  batch_window: 'batchWindow',
  default_batcher_retry_policy: 'defaultBatcherRetryPolicy',
  default_playbook: 'defaultPlaybook',
  default_ansible_config: 'defaultAnsibleConfig',
  session_ttl: 'sessionTTL',
  additional_inventory_url: 'additionalInventoryUrl',
  batcher_max_backoff: 'batcherMaxBackoff',
  batcher_disable: 'batcherDisable',
  batcher_pending_timeout: 'batcherPendingTimeout',
  logging_level: 'loggingLevel',
};

/** The camelCase a v2 client would try for a v3-only option or a setting (`default_page_size` -> `defaultPageSize`). */
export const camelName = (name: string) => name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

const inV2 = ([name]: [string, unknown]) => name in V3_TO_V2_OPTION_NAMES;
const toV2 = <T>([name, schema]: [string, T]): [string, T] => [V3_TO_V2_OPTION_NAMES[name as CfsOptionName]!, schema];

/** `PATCH /v2/options`: V2Options' names, `defaultPlaybook` writable. */
export const v2OptionsPatchSchema = z.strictObject(
  Object.fromEntries(Object.entries(v3OptionsPatchSchema.extend({ default_playbook: defaultPlaybook }).shape).filter(inV2).map(toV2)),
);

/** The options and settings that act, defaults applied (what the workflow's settings and the listings read). */
export const actingOptionsSchema = z.strictObject({ ...actingOptionFields, ...settingFields });
export type ProductOptions = z.output<typeof actingOptionsSchema>;

/** `GET|PATCH /v3/options` answer: the acting options in force, the served facts, and whatever other spec option was stored. */
export const v3OptionsSchema = v3OptionsPatchSchema.extend({
  ...actingOptionFields,
  default_ansible_config: z.literal(SERVED_ANSIBLE_CONFIG),
  include_ara_links: z.literal(false),
  default_playbook: defaultPlaybook.meta({ readOnly: true }),
});
/** `GET|PATCH /v2/options` answer: the same restricted to V2Options, in its spelling. */
export const v2OptionsSchema = z.strictObject(Object.fromEntries(Object.entries(v3OptionsSchema.shape).filter(inV2).map(toV2)));

/** `GET|PATCH /apis/cfs-image/v1/settings` answer: every setting in force. */
export const productSettingsSchema = z.strictObject(settingFields);
export type ProductSettings = z.output<typeof productSettingsSchema>;
