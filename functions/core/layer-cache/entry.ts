import { z } from 'zod';

/**
 * The layer cache's objects in the artifact store (issue 19, "Layer cache contract"): one entry
 * per (image, layer) key, the change sets it points to (content-addressed, shared by entries
 * with the same bytes), the changes report of each key, and the markers that let retention work
 * on one image's or one blob's share without reading every entry.
 */

/** Everything the cache keeps lives under this prefix of the artifact store. */
export const LAYER_CACHE_PREFIX = 'layer-cache/';

const HEX64 = /^[0-9a-f]{64}$/;
/** An image id as a key segment: what the artifact store accepts as one (no '/', no leading dot). */
const IMAGE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$/;

/** Whether `value` is a cache key (or a change set's sha256): 64 lowercase hex digits. */
export function isHex64(value: string): boolean {
  return HEX64.test(value);
}

/** Whether an image id can name a marker in the store (IMS ids are UUIDs). */
export function isStorableImageId(value: string): boolean {
  return IMAGE_ID.test(value);
}

/** Store keys of the cache's objects. */
export const layerCacheKeys = {
  entry: (key: string) => `${LAYER_CACHE_PREFIX}entries/${key}.json`,
  blob: (sha256: string) => `${LAYER_CACHE_PREFIX}blobs/${sha256}.squashfs`,
  changes: (key: string) => `${LAYER_CACHE_PREFIX}changes/${key}.json`,
  /** A result image's hold on an entry: an entry with one is never evicted. */
  pin: (key: string, imageId: string) => `${LAYER_CACHE_PREFIX}pins/${key}/${imageId}`,
  pinsOf: (key: string) => `${LAYER_CACHE_PREFIX}pins/${key}/`,
  /** The entries built on a source image, so deleting it reads only its own. */
  bySource: (imageId: string, key: string) => `${LAYER_CACHE_PREFIX}by-source/${imageId}/${key}`,
  bySourceOf: (imageId: string) => `${LAYER_CACHE_PREFIX}by-source/${imageId}/`,
  /** The entries whose change set is this blob, so a removal knows whether the blob is still used. */
  blobRef: (sha256: string, key: string) => `${LAYER_CACHE_PREFIX}refs/${sha256}/${key}`,
  blobRefsOf: (sha256: string) => `${LAYER_CACHE_PREFIX}refs/${sha256}/`,
};

/** What a store key under the cache's prefix is, with the ids in its name; undefined for anything the cache does not write. */
export type LayerCacheObject =
  | { kind: 'entry'; key: string }
  | { kind: 'blob'; sha256: string }
  | { kind: 'changes'; key: string }
  | { kind: 'pin'; key: string; imageId: string }
  | { kind: 'by-source'; imageId: string; key: string }
  | { kind: 'ref'; sha256: string; key: string };

/** Reads a store key back as the cache object it names (the inverse of layerCacheKeys). */
export function parseLayerCacheKey(storeKey: string): LayerCacheObject | undefined {
  if (!storeKey.startsWith(LAYER_CACHE_PREFIX)) return undefined;
  const [area, first, second, ...rest] = storeKey.slice(LAYER_CACHE_PREFIX.length).split('/');
  if (rest.length > 0 || !first) return undefined;
  const single = (suffix: string) => (second === undefined && first.endsWith(suffix) ? first.slice(0, -suffix.length) : undefined);
  switch (area) {
    case 'entries': {
      const key = single('.json');
      return key !== undefined && isHex64(key) ? { kind: 'entry', key } : undefined;
    }
    case 'blobs': {
      const sha256 = single('.squashfs');
      return sha256 !== undefined && isHex64(sha256) ? { kind: 'blob', sha256 } : undefined;
    }
    case 'changes': {
      const key = single('.json');
      return key !== undefined && isHex64(key) ? { kind: 'changes', key } : undefined;
    }
    case 'pins':
      return second !== undefined && isHex64(first) && isStorableImageId(second) ? { kind: 'pin', key: first, imageId: second } : undefined;
    case 'by-source':
      return second !== undefined && isStorableImageId(first) && isHex64(second) ? { kind: 'by-source', imageId: first, key: second } : undefined;
    case 'refs':
      return second !== undefined && isHex64(first) && isHex64(second) ? { kind: 'ref', sha256: first, key: second } : undefined;
    default:
      return undefined;
  }
}

const hex64 = z.string().regex(HEX64);
const isoTime = z.iso.datetime({ offset: true });

/**
 * A cache entry as stored (`layer-cache/entries/<key>.json`). Its blob and changes keys must be
 * the ones its own key and sha256 name: an entry cannot point a reader at any other object.
 */
export const layerCacheEntrySchema = z
  .object({
    key: hex64,
    parent_key: hex64.nullable(),
    /** The SOURCE image the layer ran on. */
    image_id: z.string().regex(IMAGE_ID),
    source_rootfs_sha256: hex64,
    layer_index: z.number().int().nonnegative(),
    layer_name: z.string(),
    /** The session that recorded it. */
    session: z.string().min(1),
    created: isoTime,
    last_used: isoTime,
    runner_version: z.string(),
    change_set: z.object({ key: z.string(), sha256: hex64, size: z.number().int().nonnegative() }),
    changes_key: z.string(),
  })
  .superRefine((entry, ctx) => {
    if (entry.change_set.key !== layerCacheKeys.blob(entry.change_set.sha256)) {
      ctx.addIssue({ code: 'custom', path: ['change_set', 'key'], message: 'the change set key is not the one its sha256 names' });
    }
    if (entry.changes_key !== layerCacheKeys.changes(entry.key)) {
      ctx.addIssue({ code: 'custom', path: ['changes_key'], message: 'the changes key is not the one the entry key names' });
    }
  });

export type LayerCacheEntry = z.infer<typeof layerCacheEntrySchema>;

/** Past this many files a changes report lists no more (`files_truncated`). */
export const MAX_CHANGED_FILES = 100_000;

/** What one layer changed in one image root (`layer-cache/changes/<key>.json`). */
export const layerChangesSchema = z.object({
  key: hex64,
  image_id: z.string().min(1),
  layer_index: z.number().int().nonnegative(),
  files: z
    .array(
      z.object({
        path: z.string().min(1),
        change: z.enum(['added', 'modified', 'removed']),
        type: z.enum(['file', 'directory', 'symlink', 'device', 'fifo', 'socket']),
      }),
    )
    .max(MAX_CHANGED_FILES),
  files_truncated: z.boolean(),
  packages: z
    .object({
      manager: z.enum(['dpkg', 'rpm']),
      changes: z.array(z.object({ name: z.string(), old: z.string().nullable(), new: z.string().nullable() })),
    })
    .nullable(),
});

export type LayerChanges = z.infer<typeof layerChangesSchema>;
