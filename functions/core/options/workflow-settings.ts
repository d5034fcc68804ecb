import type { OptionsStore } from '../../ports/options-store.ts';
import { ageSeconds } from '../sessions/age.ts';
import { effectiveOptions } from './options-use-cases.ts';
import { DEFAULT_LAYER_CACHE_MAX_AGE_SECONDS, type ProductOptions } from './options-schemas.ts';

/**
 * The bridge from the CFS options and this product's settings to the settings the workflow's
 * steps read. Composition roots build the steps' `settings()` with `settingsReader`: each call
 * reads the one record both are stored in, so a PATCH of either takes effect for the next step
 * that runs; the roots' own settings are the defaults.
 */

/** The part of the steps' WorkflowSettings that the options and settings drive (the steps' type has these fields). */
export interface OptionDrivenSettings {
  imageWaitTimeoutSeconds: number;
  imagePollIntervalSeconds: number;
  squashfs: { compressor: ProductOptions['squashfs_compressor']; level?: number };
  allowedCloneSchemes: string[];
  /** `debug_wait_time` in seconds. */
  debugWaitSeconds?: number;
  /** `session_ttl` in seconds; 0 keeps completed sessions. */
  sessionTtlSeconds?: number;
  /** The layer cache's settings (absent: on, 7 days, the deployment's cap). */
  layerCache?: { enabled: boolean; maxAgeSeconds: number; maxBytes: number | null };
}

/** CFS's documented defaults, where the settings carry none. */
export const CFS_OPTION_DEFAULTS = { session_ttl: '7d', debug_wait_time: 3600, default_page_size: 1000 } as const;

// Days rather than weeks, as CFS documents its default (`7d`).
const AGE_UNITS: Array<[string, number]> = [
  ['d', 86_400],
  ['h', 3600],
  ['m', 60],
];

/** Seconds as a CFS age (`7d`, `90m`), in the largest unit up to days that divides it (rounded up to minutes); 0 is the empty age. */
export function secondsToAge(seconds: number): string {
  if (seconds <= 0) return '';
  const minutes = Math.ceil(seconds / 60) * 60;
  const [unit, size] = AGE_UNITS.find(([, size]) => minutes % size === 0)!;
  return `${minutes / size}${unit}`;
}

/** The acting options' and the settings' defaults of a deployment whose workflow settings are `base`. */
export function optionDefaultsFrom(base: OptionDrivenSettings, extra: Partial<typeof CFS_OPTION_DEFAULTS> = {}): ProductOptions {
  return {
    ...CFS_OPTION_DEFAULTS,
    ...(base.sessionTtlSeconds !== undefined ? { session_ttl: secondsToAge(base.sessionTtlSeconds) } : {}),
    ...(base.debugWaitSeconds !== undefined ? { debug_wait_time: base.debugWaitSeconds } : {}),
    ...extra,
    image_wait_timeout: base.imageWaitTimeoutSeconds,
    image_poll_interval: base.imagePollIntervalSeconds,
    squashfs_compressor: base.squashfs.compressor,
    squashfs_compression_level: base.squashfs.level ?? null,
    clone_url_schemes: [...base.allowedCloneSchemes],
    layer_cache: base.layerCache?.enabled ?? true,
    layer_cache_max_age_seconds: base.layerCache?.maxAgeSeconds ?? DEFAULT_LAYER_CACHE_MAX_AGE_SECONDS,
    layer_cache_max_bytes: base.layerCache?.maxBytes ?? null,
  };
}

/** `base` with the options and settings in force applied. */
export function settingsWithOptions<T extends OptionDrivenSettings>(base: T, options: ProductOptions): T {
  return {
    ...base,
    imageWaitTimeoutSeconds: options.image_wait_timeout,
    imagePollIntervalSeconds: options.image_poll_interval,
    squashfs: { compressor: options.squashfs_compressor, ...(options.squashfs_compression_level !== null ? { level: options.squashfs_compression_level } : {}) },
    allowedCloneSchemes: [...options.clone_url_schemes],
    debugWaitSeconds: options.debug_wait_time,
    sessionTtlSeconds: ageSeconds(options.session_ttl, 'session_ttl') ?? 0,
    layerCache: { enabled: options.layer_cache, maxAgeSeconds: options.layer_cache_max_age_seconds, maxBytes: options.layer_cache_max_bytes },
  };
}

/** The steps' `settings()`: reads the options at each call, `base` where none is set. */
export function settingsReader<T extends OptionDrivenSettings>(store: Pick<OptionsStore, 'defaults' | 'get'>, base: T): () => Promise<T> {
  return async () => settingsWithOptions(base, effectiveOptions(store.defaults, await store.get()));
}
