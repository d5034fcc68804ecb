import type { AppPorts } from '../../ports/index.ts';
import { fieldError, parseOrThrow } from '../sessions/validation.ts';
import {
  SERVED_ANSIBLE_CONFIG,
  storedOptionsSchema,
  v3OptionsPatchSchema,
  V3_TO_V2_OPTION_NAMES,
  type ProductOptions,
  type StoredOptions,
} from './options-schemas.ts';

export type OptionsPorts = Pick<AppPorts, 'options'>;
export type OptionsVersion = 'v2' | 'v3';

const V2_TO_V3 = Object.fromEntries(Object.entries(V3_TO_V2_OPTION_NAMES).map(([v3, v2]) => [v2, v3])) as Record<string, keyof StoredOptions>;

/** Compressors whose mksquashfs level is 1-9 (`source` may turn out to be any of the levelled ones). */
const LEVELS_TO_9 = new Set(['gzip', 'lzo', 'source']);
const NO_LEVEL = new Set(['xz', 'lz4']);

/**
 * The options in force: each stored value, else the deployment's default. A stored clone URL
 * scheme list is narrowed to what the deployment supports (it may have been narrowed since);
 * if nothing is left, the deployment's list applies.
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
  };
}

/** The options in force now (what listings and the workflow's steps read). */
export async function currentOptions(ports: OptionsPorts): Promise<ProductOptions> {
  return effectiveOptions(ports.options.defaults, await ports.options.get());
}

/** The v3 answer: everything stored, every product option with its value in force, and the served facts. */
export function optionsToV3(defaults: ProductOptions, stored: StoredOptions): Record<string, unknown> {
  return { ...stored, ...effectiveOptions(defaults, stored), default_ansible_config: SERVED_ANSIBLE_CONFIG, include_ara_links: false };
}

/** The v2 answer: the same, in the spec's V2Options spelling (camelCase, `sessionTTL`). */
export function optionsToV2(defaults: ProductOptions, stored: StoredOptions): Record<string, unknown> {
  return Object.fromEntries(Object.entries(optionsToV3(defaults, stored)).map(([name, value]) => [V3_TO_V2_OPTION_NAMES[name as keyof StoredOptions], value]));
}

function view(version: OptionsVersion, defaults: ProductOptions, stored: StoredOptions) {
  return version === 'v3' ? optionsToV3(defaults, stored) : optionsToV2(defaults, stored);
}

/** `GET /v{2,3}/options`. */
export async function getOptions(ports: OptionsPorts, version: OptionsVersion): Promise<Record<string, unknown>> {
  return view(version, ports.options.defaults, await ports.options.get());
}

/** The body in v3 names; unknown names (and v3's read-only `default_playbook`) refused naming the option as the caller spelled it. */
function toV3Names(body: Record<string, unknown>, version: OptionsVersion): Record<string, unknown> {
  const known = version === 'v3' ? Object.keys(v3OptionsPatchSchema.shape) : Object.keys(V2_TO_V3);
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(body)) {
    if (version === 'v3' && name === 'default_playbook') throw fieldError(name, 'is read-only in v3 (set it through v2, where it is stored and unused)');
    if (!known.includes(name)) throw fieldError(name, `unknown option; the options are ${known.join(', ')}`);
    out[version === 'v3' ? name : V2_TO_V3[name]!] = value;
  }
  return out;
}

/** Rules across options, checked against what the options will be after the change. */
function checkCombined(defaults: ProductOptions, next: StoredOptions, spell: (name: keyof StoredOptions) => string): void {
  const { squashfs_compressor: compressor, squashfs_compression_level: level, clone_url_schemes: schemes } = effectiveOptions(defaults, next);
  if (level !== null) {
    if (NO_LEVEL.has(compressor)) throw fieldError(spell('squashfs_compression_level'), `must be null: mksquashfs takes no compression level for ${compressor}`);
    if (LEVELS_TO_9.has(compressor) && level > 9) throw fieldError(spell('squashfs_compression_level'), `must be from 1 to 9 for ${compressor}`);
  }
  const unsupported = (next.clone_url_schemes ?? []).filter((s) => !defaults.clone_url_schemes.includes(s));
  if (unsupported.length) {
    throw fieldError(spell('clone_url_schemes'), `${unsupported.join(', ')} not supported by this deployment (it supports ${defaults.clone_url_schemes.join(', ')})`);
  }
  if (schemes.length === 0) throw fieldError(spell('clone_url_schemes'), 'must name at least one scheme');
}

/**
 * `PATCH /v{2,3}/options`: sets the options the body names (v3 or v2 spelling by version),
 * each checked as the spec says, then the rules across them; answers all options. An unknown
 * name is a 400 naming it.
 */
export async function patchOptions(ports: OptionsPorts, body: Record<string, unknown>, version: OptionsVersion): Promise<Record<string, unknown>> {
  const spell = (name: keyof StoredOptions) => (version === 'v3' ? name : V3_TO_V2_OPTION_NAMES[name]);
  const renamed = toV3Names(body, version);
  let patch: StoredOptions;
  try {
    patch = parseOrThrow(storedOptionsSchema, renamed);
  } catch (error) {
    const field = (error as { field?: string }).field;
    if (version === 'v2' && field && field in V3_TO_V2_OPTION_NAMES) {
      const v2 = V3_TO_V2_OPTION_NAMES[field as keyof StoredOptions];
      throw fieldError(v2, (error as Error).message.slice(field.length + 2));
    }
    throw error;
  }
  const defaults = ports.options.defaults;
  const stored = await ports.options.update((current) => {
    const next = { ...current, ...patch };
    checkCombined(defaults, next, spell);
    return next;
  });
  return view(version, defaults, stored);
}
