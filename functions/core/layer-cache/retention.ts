import type { ImageRecord } from '../model/image.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import type { Clock } from '../../ports/clock.ts';
import type { ImageRegistry } from '../../ports/image-registry.ts';
import { LAYER_KEYS_METADATA_KEY } from '../workflow/layer-cache-status.ts';
import { isHex64 } from './entry.ts';
import { LayerCache, type LayerCacheSweep } from './layer-cache.ts';

/**
 * The layer cache's retention (issue 19, item 6): a size cap (the setting
 * `layer_cache_max_bytes`, else the deployment's own cap), least recently used eviction and
 * orphan removal by LayerCache.sweep, and the image registry's part: deleting a source image
 * removes the entries built on it, deleting a result image removes its pins.
 */

/** The cap in AWS when neither the setting nor the CDK prop `layerCacheMaxBytes` names one. */
export const DEFAULT_AWS_LAYER_CACHE_MAX_BYTES = 100 * 1024 ** 3;

/** The embedded server's cap when the setting is null: this share of the data directory's filesystem. */
export const DEFAULT_LAYER_CACHE_DISK_SHARE = 0.1;

/** The metadata key a registered result keeps its layer keys under, in layer order, joined by ',' (record-artifacts writes it). */
export const LAYER_KEYS_METADATA = LAYER_KEYS_METADATA_KEY;

/** The cap a sweep applies: the setting when it names one, else the deployment's. */
export function layerCacheCapBytes(setting: number | null | undefined, deploymentCap: number): number {
  return setting ?? deploymentCap;
}

/** The embedded server's own cap: a share of the data directory's filesystem (`statfs` blocks x block size). */
export function diskShareCapBytes(filesystemBytes: number, share: number = DEFAULT_LAYER_CACHE_DISK_SHARE): number {
  return Math.floor(filesystemBytes * share);
}

/** The cache keys a result image was built from (its `cfs_layer_keys` metadata); none for any other image. */
export function layerKeysOf(image: Pick<ImageRecord, 'metadata'>): string[] {
  const joined = image.metadata?.[LAYER_KEYS_METADATA];
  return joined ? joined.split(',').map((key) => key.trim()).filter(isHex64) : [];
}

/** What deleting an image did to the layer cache. */
export interface ReleasedImage {
  /** Entries removed: built on the image as a source, or unpinned by it once their source was gone. */
  removed: string[];
  /** Keys the image pinned that no image pins any more. */
  unpinned: string[];
}

/**
 * The layer cache's part of deleting an image: its pins go (as a result image: the keys its
 * metadata names), the entries built on it go (as a source, except those a result still pins:
 * the result's lineage), and an entry this image was the last to pin goes too when its own
 * source image no longer exists (nothing could reuse it, nothing shows its lineage). Reads only
 * the image's own markers and entries, never the whole cache. Safe to repeat.
 */
export async function releaseImageFromLayerCache(
  deps: { images: Pick<ImageRegistry, 'get'>; artifacts: ArtifactStore; clock: Clock },
  image: Pick<ImageRecord, 'id' | 'metadata'>,
): Promise<ReleasedImage> {
  const cache = new LayerCache(deps.artifacts, deps.clock);
  const unpinned = await cache.unpin(image.id, layerKeysOf(image));
  const removed = await cache.removeForSourceImage(image.id);
  for (const key of unpinned) {
    const entry = await cache.find(key, { maxAgeSeconds: Number.POSITIVE_INFINITY });
    if (!entry || entry.image_id === image.id || (await cache.isPinned(key))) continue;
    if (await deps.images.get(entry.image_id, { includePending: true })) continue;
    await cache.remove(key);
    removed.push(key);
  }
  return { removed, unpinned };
}

/**
 * Pins, for each registered result, the cache entries it was built from (the keys its
 * `cfs_layer_keys` metadata names), so they outlive eviction for as long as the result lives.
 * Safe to repeat (a pin is one object per key and result); a result without keys pins nothing.
 */
export async function pinResultLayers(deps: { images: Pick<ImageRegistry, 'get'>; artifacts: ArtifactStore; clock: Clock }, resultIds: readonly string[]): Promise<void> {
  const cache = new LayerCache(deps.artifacts, deps.clock);
  for (const id of resultIds) {
    const result = await deps.images.get(id, { includePending: true });
    const keys = result ? layerKeysOf(result) : [];
    if (keys.length > 0) await cache.pin(keys, id);
  }
}

/** Sweeps the cache in `artifacts` down to `maxBytes` (see LayerCache.sweep). */
export async function sweepLayerCache(artifacts: ArtifactStore, clock: Clock, maxBytes: number): Promise<LayerCacheSweep> {
  return new LayerCache(artifacts, clock).sweep({ maxBytes });
}
