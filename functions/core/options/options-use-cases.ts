import type { AppPorts } from '../../ports/index.ts';
import { fieldError, parseOrThrow } from '../sessions/validation.ts';
import {
  camelName,
  CFS_OPTION_NAMES,
  CFS_OPTIONS_PATH,
  PRODUCT_SETTINGS_PATH,
  SERVED_ANSIBLE_CONFIG,
  SETTING_NAMES,
  settingsPatchSchema,
  storedOptionsSchema,
  v3OptionsPatchSchema,
  V3_TO_V2_OPTION_NAMES,
  type CfsOptionName,
  type ProductOptions,
  type ProductSettings,
  type StoredOptions,
} from './options-schemas.ts';

export type OptionsPorts = Pick<AppPorts, 'options'>;
export type OptionsVersion = 'v2' | 'v3';

const V2_TO_V3 = Object.fromEntries(Object.entries(V3_TO_V2_OPTION_NAMES).map(([v3, v2]) => [v2, v3])) as Record<string, CfsOptionName>;

/** Compressors whose mksquashfs level is 1-9 (`source` may turn out to be any of the levelled ones). */
const LEVELS_TO_9 = new Set(['gzip', 'lzo', 'source']);
const NO_LEVEL = new Set(['xz', 'lz4']);

const SETTINGS_ELSEWHERE = `not a CFS option: this product's own settings are set with PATCH ${PRODUCT_SETTINGS_PATH} (cfs settings update)`;

/**
 * The options and settings in force: each stored value, else the deployment's default. A stored
 * clone URL scheme list is narrowed to what the deployment supports (it may have been narrowed
 * since); if nothing is left, the deployment's list applies.
 */
export function effectiveOptions(defaults: ProductOptions, stored: StoredOptions): ProductOptions {
  const schemes = stored.clone_url_schemes?.filter((s) => defaults.clone_url_schemes.includes(s));
  return {
    session_ttl: stored.session_ttl ?? defaults.session_ttl,
    debug_wait_time: stored.debug_wait_time ?? defaults.debug_wait_time,
    default_page_size: stored.default_page_size ?? defaults.default_page_size,
    image_wait_timeout: stored.image_wait_timeout ?? defaults.image_wait_timeout,
    image_poll_interval: stored.image_poll_interval ?? defaults.image_poll_interval,
    squashfs_compressor: stored.squashfs_compressor ?? defaults.squashfs_compressor,
    squashfs_compression_level: stored.squashfs_compression_level !== undefined ? stored.squashfs_compression_level : defaults.squashfs_compression_level,
    clone_url_schemes: schemes?.length ? schemes : defaults.clone_url_schemes,
    layer_cache: stored.layer_cache ?? defaults.layer_cache,
    layer_cache_max_age_seconds: stored.layer_cache_max_age_seconds ?? defaults.layer_cache_max_age_seconds,
    // null stored is "the deployment's cap", as absent.
    layer_cache_max_bytes: stored.layer_cache_max_bytes ?? defaults.layer_cache_max_bytes,
  };
}

/** The options and settings in force now (what listings and the workflow's steps read). */
export async function currentOptions(ports: OptionsPorts): Promise<ProductOptions> {
  return effectiveOptions(ports.options.defaults, await ports.options.get());
}

/** The v3 answer: the spec options stored, the acting ones with their value in force, and the served facts; nothing V3Options lacks. */
export function optionsToV3(defaults: ProductOptions, stored: StoredOptions): Record<string, unknown> {
  const { session_ttl, debug_wait_time, default_page_size } = effectiveOptions(defaults, stored);
  const spec = Object.entries(stored).filter(([name]) => CFS_OPTION_NAMES.includes(name));
  return { ...Object.fromEntries(spec), session_ttl, debug_wait_time, default_page_size, default_ansible_config: SERVED_ANSIBLE_CONFIG, include_ara_links: false };
}

/** The v2 answer: the same restricted to V2Options' names (no v3-only option), in its spelling (camelCase, `sessionTTL`). */
export function optionsToV2(defaults: ProductOptions, stored: StoredOptions): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(optionsToV3(defaults, stored)).flatMap(([name, value]) => {
      const v2 = V3_TO_V2_OPTION_NAMES[name as CfsOptionName];
      return v2 ? [[v2, value]] : [];
    }),
  );
}

/** The settings answer: each of this product's settings in force. */
export function settingsView(defaults: ProductOptions, stored: StoredOptions): ProductSettings {
  const o = effectiveOptions(defaults, stored);
  return {
    image_wait_timeout: o.image_wait_timeout,
    image_poll_interval: o.image_poll_interval,
    squashfs_compressor: o.squashfs_compressor,
    squashfs_compression_level: o.squashfs_compression_level,
    clone_url_schemes: o.clone_url_schemes,
    layer_cache: o.layer_cache,
    layer_cache_max_age_seconds: o.layer_cache_max_age_seconds,
    layer_cache_max_bytes: o.layer_cache_max_bytes,
  };
}

function view(version: OptionsVersion, defaults: ProductOptions, stored: StoredOptions) {
  return version === 'v3' ? optionsToV3(defaults, stored) : optionsToV2(defaults, stored);
}

/** `GET /v{2,3}/options`. */
export async function getOptions(ports: OptionsPorts, version: OptionsVersion): Promise<Record<string, unknown>> {
  return view(version, ports.options.defaults, await ports.options.get());
}

/** `GET /apis/cfs-image/v1/settings`. */
export async function getSettings(ports: OptionsPorts): Promise<ProductSettings> {
  return settingsView(ports.options.defaults, await ports.options.get());
}

/** The setting a name spells in either case (`image_wait_timeout`, `imageWaitTimeout`), if any. */
const settingNamed = (name: string) => SETTING_NAMES.find((setting) => setting === name || camelName(setting) === name);

/**
 * The body in v3 names. Refused, naming the option as the caller spelled it: v3's read-only
 * `default_playbook`, a v3-only option sent to v2 (saying its v3 name), one of this product's
 * settings (saying where it lives), and any other unknown name.
 */
function toV3Names(body: Record<string, unknown>, version: OptionsVersion): Record<string, unknown> {
  const v3Names = Object.keys(v3OptionsPatchSchema.shape);
  const known = version === 'v3' ? v3Names : Object.keys(V2_TO_V3);
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(body)) {
    if (version === 'v3' && name === 'default_playbook') throw fieldError(name, 'is read-only in v3 (set it through v2, where it is stored and unused)');
    if (known.includes(name)) {
      out[version === 'v3' ? name : V2_TO_V3[name]!] = value;
      continue;
    }
    const setting = settingNamed(name);
    if (setting) throw fieldError(name, `${SETTINGS_ELSEWHERE} as ${setting}`);
    const v3 = version === 'v2' ? v3Names.find((v3Name) => v3Name === name || camelName(v3Name) === name) : undefined;
    const v2 = v3 && V3_TO_V2_OPTION_NAMES[v3 as CfsOptionName];
    if (v2) throw fieldError(name, `unknown option; v2 spells it ${v2}`);
    if (v3) throw fieldError(name, `not a v2 option (CFS v2 has none of that name): set ${v3} with PATCH ${CFS_OPTIONS_PATH}`);
    throw fieldError(name, `unknown option; the options are ${known.join(', ')}`);
  }
  return out;
}

/**
 * `PATCH /v{2,3}/options`: sets the options the body names (v3 or v2 spelling by version),
 * each checked as the spec says; answers all options of that version. An unknown name is a 400
 * naming it (and where it lives, when it is a v3-only option or a setting of this product).
 */
export async function patchOptions(ports: OptionsPorts, body: Record<string, unknown>, version: OptionsVersion): Promise<Record<string, unknown>> {
  const renamed = toV3Names(body, version);
  let patch: StoredOptions;
  try {
    patch = parseOrThrow(storedOptionsSchema, renamed);
  } catch (error) {
    const field = (error as { field?: string }).field;
    const v2 = version === 'v2' && field ? V3_TO_V2_OPTION_NAMES[field as CfsOptionName] : undefined;
    if (v2) throw fieldError(v2, (error as Error).message.slice(field!.length + 2));
    throw error;
  }
  const stored = await ports.options.update((current) => ({ ...current, ...patch }));
  return view(version, ports.options.defaults, stored);
}

/** Rules across settings, checked against what the settings will be after the change. */
function checkCombined(defaults: ProductOptions, next: StoredOptions): void {
  const { squashfs_compressor: compressor, squashfs_compression_level: level, clone_url_schemes: schemes } = effectiveOptions(defaults, next);
  if (level !== null) {
    if (NO_LEVEL.has(compressor)) throw fieldError('squashfs_compression_level', `must be null: mksquashfs takes no compression level for ${compressor}`);
    if (LEVELS_TO_9.has(compressor) && level > 9) throw fieldError('squashfs_compression_level', `must be from 1 to 9 for ${compressor}`);
  }
  const unsupported = (next.clone_url_schemes ?? []).filter((s) => !defaults.clone_url_schemes.includes(s));
  if (unsupported.length) {
    throw fieldError('clone_url_schemes', `${unsupported.join(', ')} not supported by this deployment (it supports ${defaults.clone_url_schemes.join(', ')})`);
  }
  if (schemes.length === 0) throw fieldError('clone_url_schemes', 'must name at least one scheme');
}

/**
 * `PATCH /apis/cfs-image/v1/settings`: sets the settings the body names, each checked, then the
 * rules across them; answers every setting. A CFS option's name is a 400 saying where it is set;
 * any other unknown name a 400 listing the settings.
 */
export async function patchSettings(ports: OptionsPorts, body: Record<string, unknown>): Promise<ProductSettings> {
  for (const name of Object.keys(body)) {
    if ((SETTING_NAMES as string[]).includes(name)) continue;
    if (CFS_OPTION_NAMES.includes(name) || name in V2_TO_V3) {
      throw fieldError(name, `a CFS option, not a setting of this product: set it with PATCH ${CFS_OPTIONS_PATH} (cfs options update)`);
    }
    throw fieldError(name, `unknown setting; the settings are ${SETTING_NAMES.join(', ')}`);
  }
  const patch = parseOrThrow(settingsPatchSchema, body);
  const defaults = ports.options.defaults;
  const stored = await ports.options.update((current) => {
    const next = { ...current, ...patch };
    checkCombined(defaults, next);
    return next;
  });
  return settingsView(defaults, stored);
}
