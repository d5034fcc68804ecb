import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError, NotFoundError, ValidationError } from '../errors.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import { measureStoredObject } from '../images/verify-artifact.ts';
import { systemClock, type Clock } from '../../ports/clock.ts';
import {
  LAYER_CACHE_PREFIX,
  isHex64,
  isStorableImageId,
  layerCacheEntrySchema,
  layerCacheKeys,
  layerChangesSchema,
  parseLayerCacheKey,
  type LayerCacheEntry,
  type LayerCacheObject,
  type LayerChanges,
} from './entry.ts';

export { layerCacheEntrySchema, layerChangesSchema, type LayerCacheEntry, type LayerChanges } from './entry.ts';

/**
 * A cached change set whose bytes are not the ones its entry names (or are gone): the entry has
 * been removed, and the layer must run again. Never trusted, always logged by the caller.
 */
export class CorruptEntryError extends Error {
  override readonly name = 'CorruptEntryError' as const;
  constructor(
    readonly key: string,
    detail: string,
    /** Why the entry could not be removed (e.g. a runner without the grant): it stays refused, each use verifies it again. */
    removalFailure?: string,
  ) {
    super(`layer cache entry ${key}: ${detail}; ${removalFailure === undefined ? 'the entry was removed' : `the entry could not be removed (${removalFailure})`}`);
  }
}

/** What a finished layer leaves in the cache for one image. */
export interface LayerCacheRecord {
  key: string;
  parent_key: string | null;
  /** The SOURCE image the layer ran on. */
  image_id: string;
  source_rootfs_sha256: string;
  layer_index: number;
  layer_name: string;
  session: string;
  runner_version: string;
  /** The change set's squashfs on this machine (read, never moved). */
  changeSetPath: string;
  sha256: string;
  size: number;
  changes: LayerChanges;
}

/** What one sweep removed, and the change sets' total size it left. */
export interface LayerCacheSweep {
  /** Store keys removed as orphans (blobs, reports, markers nothing refers to; entries whose blob is gone or that do not parse). */
  orphans: string[];
  /** Cache keys evicted, least recently used first. */
  evicted: string[];
  /** The distinct change sets' total size after the sweep. */
  bytes: number;
}

export interface LayerCacheOptions {
  /**
   * How old a blob, report or marker without an entry must be before a sweep removes it: a
   * record writes the entry last, so what it wrote before is an orphan only for a moment.
   */
  orphanGraceSeconds?: number;
  /** Entries read at once by a sweep. */
  readConcurrency?: number;
}

/** A record in progress writes its blob, report and markers within this many seconds of its entry. */
export const DEFAULT_ORPHAN_GRACE_SECONDS = 3600;

const JSON_TYPE = { contentType: 'application/json' };

/**
 * The layer cache over the artifact store (issue 19). An entry says which change set (a
 * content-addressed squashfs blob) turns the tree before a layer into the tree after it, for one
 * key chained over everything that decides the layer's outcome (functions/core/layer-cache/keys.ts).
 * Writes go blob, report, markers, entry last, so a reader never meets an entry whose objects
 * were not written; a blob shared by entries with the same bytes is deleted only when no entry
 * refers to it (`refs/<sha256>/<key>` markers). Result images pin the entries they were built
 * from (never evicted), deleting a source image removes what was built on it
 * (`by-source/<image id>/<key>` markers, so only its own entries are read), and a sweep removes
 * orphans and then evicts the least recently used unpinned entries down to a size cap.
 */
export class LayerCache {
  private readonly graceMs: number;
  private readonly readConcurrency: number;

  constructor(
    private readonly store: ArtifactStore,
    private readonly clock: Clock = systemClock,
    options: LayerCacheOptions = {},
  ) {
    this.graceMs = (options.orphanGraceSeconds ?? DEFAULT_ORPHAN_GRACE_SECONDS) * 1000;
    this.readConcurrency = Math.max(1, options.readConcurrency ?? 8);
  }

  /**
   * The entry for `key` when it exists, parses, and was created less than `maxAgeSeconds` ago
   * (older layers are run again, so package layers pick up security updates); undefined otherwise.
   */
  async find(key: string, options: { maxAgeSeconds: number }): Promise<LayerCacheEntry | undefined> {
    if (!isHex64(key)) return undefined;
    const entry = await this.readEntry(key);
    if (!entry) return undefined;
    const age = this.clock.now().getTime() - Date.parse(entry.created);
    return age <= options.maxAgeSeconds * 1000 ? entry : undefined;
  }

  /**
   * Downloads an entry's change set to `toPath`, checking size and sha256 on the way. Bytes that
   * are not the entry's (or a blob that is gone) remove the entry (and a blob whose bytes do not
   * hash to its name) and throw CorruptEntryError; nothing is left at `toPath` then.
   */
  async fetchChangeSet(entry: LayerCacheEntry, toPath: string): Promise<void> {
    const checked = layerCacheEntrySchema.parse(entry);
    const { key, sha256, size } = checked.change_set;
    let source;
    try {
      source = await this.store.get(key);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      throw new CorruptEntryError(checked.key, `its change set ${key} is missing`, await this.discard(checked.key));
    }
    const hash = createHash('sha256');
    let received = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        // Larger than named: stop reading now rather than filling the disk.
        if (received > size) return done(new IntegrityError(`more than the ${size} bytes named`));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    let problem: string | undefined;
    try {
      await pipeline(source, measure, createWriteStream(toPath, { highWaterMark: 1 << 20 }));
      const digest = hash.digest('hex');
      if (received !== size) problem = `its change set holds ${received} bytes, the entry names ${size}`;
      else if (digest !== sha256) problem = `its change set hashes to sha256 ${digest}, the entry names ${sha256}`;
    } catch (error) {
      if (!(error instanceof IntegrityError)) {
        await rm(toPath, { force: true });
        throw error;
      }
      problem = `its change set holds ${error.message}`;
    }
    if (problem === undefined) return;
    await rm(toPath, { force: true });
    // The blob's name is its sha256: bytes that hash otherwise are no one's change set.
    throw new CorruptEntryError(checked.key, problem, await this.discard(checked.key, key));
  }

  /** Removes a refused entry (and a blob whose bytes are not its name's); answers why not when that failed, as the refusal stands anyway. */
  private async discard(key: string, badBlob?: string): Promise<string | undefined> {
    try {
      await this.removeEntry(key);
      if (badBlob) await this.store.delete(badBlob);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  /**
   * Records a finished layer's change set for one image: the blob (content-addressed: put only
   * when absent), the changes report, the markers, then the entry, so a reader never sees an
   * entry without its blob. The blob's bytes are measured as they are stored and must be the
   * `sha256` and `size` given. Recording a key again replaces its entry (a full run with the
   * cache's reuse off still records); the blob it no longer uses goes when nothing else does.
   */
  async record(record: LayerCacheRecord): Promise<LayerCacheEntry> {
    const { sha256, size } = record;
    const previous = await this.beginRecord(record);
    const blobKey = layerCacheKeys.blob(sha256);
    const existing = await this.store.head(blobKey);
    if (existing?.size !== size) {
      const stored = await this.store.put(blobKey, createReadStream(record.changeSetPath, { highWaterMark: 4 << 20 }));
      if (stored.sha256 !== sha256 || stored.size !== size) {
        await this.store.delete(blobKey);
        throw new IntegrityError(`the change set at ${record.changeSetPath} is ${stored.size} bytes with sha256 ${stored.sha256}, not the ${size} bytes with sha256 ${sha256} given`);
      }
    }
    return this.commitRecord(record, previous);
  }

  /**
   * The same as `record` for a change set already in the store at `stagedKey` (a runner's
   * upload): it is moved to its content address (or dropped when that blob exists) and its bytes
   * measured there; a blob that is not the `sha256` and `size` given is removed and refused.
   */
  async recordStaged(record: Omit<LayerCacheRecord, 'changeSetPath'>, stagedKey: string): Promise<LayerCacheEntry> {
    const { sha256, size } = record;
    const previous = await this.beginRecord(record);
    const blobKey = layerCacheKeys.blob(sha256);
    const existing = await this.store.head(blobKey);
    if (existing?.size === size) {
      await this.store.delete(stagedKey);
    } else {
      const moved = await this.store.promote(stagedKey, blobKey);
      if (!moved) throw new IntegrityError(`there is no change set at ${stagedKey}`);
      const measured = moved.sha256 !== undefined ? { size: moved.size, sha256: moved.sha256 } : await measureStoredObject(this.store, blobKey);
      if (measured.sha256 !== sha256 || measured.size !== size) {
        await this.store.delete(blobKey);
        throw new IntegrityError(`the change set at ${stagedKey} is ${measured.size} bytes with sha256 ${measured.sha256}, not the ${size} bytes with sha256 ${sha256} claimed`);
      }
    }
    return this.commitRecord(record, previous);
  }

  /** Checks a record's names and writes its blob reference (first: a removal that lists the blob's references from now on keeps the blob); answers the entry it replaces. */
  private async beginRecord(record: Omit<LayerCacheRecord, 'changeSetPath'>): Promise<LayerCacheEntry | undefined> {
    const { key, sha256 } = record;
    if (!isHex64(key)) throw new ValidationError(`'${key}' is not a layer cache key (64 hex digits)`, 'key');
    if (!isHex64(sha256)) throw new ValidationError(`'${sha256}' is not a sha256 (64 hex digits)`, 'sha256');
    if (!isStorableImageId(record.image_id)) throw new ValidationError(`image id '${record.image_id}' cannot name a layer cache marker`, 'image_id');
    layerChangesSchema.parse(record.changes);
    const previous = await this.readEntry(key);
    await this.store.put(layerCacheKeys.blobRef(sha256, key), key);
    return previous;
  }

  /** With the blob in place: the report, the by-source marker, then the entry; the blob the entry no longer uses goes when nothing else does. */
  private async commitRecord(record: Omit<LayerCacheRecord, 'changeSetPath'>, previous: LayerCacheEntry | undefined): Promise<LayerCacheEntry> {
    const { key, sha256, size } = record;
    const blobKey = layerCacheKeys.blob(sha256);
    await this.store.put(layerCacheKeys.changes(key), JSON.stringify(layerChangesSchema.parse(record.changes)), JSON_TYPE);
    await this.store.put(layerCacheKeys.bySource(record.image_id, key), key);
    const now = this.clock.now().toISOString();
    const entry = layerCacheEntrySchema.parse({
      key,
      parent_key: record.parent_key,
      image_id: record.image_id,
      source_rootfs_sha256: record.source_rootfs_sha256,
      layer_index: record.layer_index,
      layer_name: record.layer_name,
      session: record.session,
      created: now,
      last_used: now,
      runner_version: record.runner_version,
      change_set: { key: blobKey, sha256, size },
      changes_key: layerCacheKeys.changes(key),
    } satisfies LayerCacheEntry);
    await this.store.put(layerCacheKeys.entry(key), JSON.stringify(entry), JSON_TYPE);
    if (previous && previous.change_set.sha256 !== sha256) await this.releaseBlob(previous.change_set.sha256, key);
    if (previous && previous.image_id !== record.image_id) await this.store.delete(layerCacheKeys.bySource(previous.image_id, key));
    return entry;
  }

  /** Marks an entry as just used (eviction goes least recently used first); nothing when there is no entry. */
  async touch(key: string): Promise<void> {
    const entry = isHex64(key) ? await this.readEntry(key) : undefined;
    if (!entry) return;
    await this.store.put(layerCacheKeys.entry(key), JSON.stringify({ ...entry, last_used: this.clock.now().toISOString() }), JSON_TYPE);
  }

  /** The changes report of a key; undefined when there is none or it does not parse. */
  async changes(key: string): Promise<LayerChanges | undefined> {
    if (!isHex64(key)) return undefined;
    const parsed = layerChangesSchema.safeParse(await this.readJson(layerCacheKeys.changes(key)));
    return parsed.success ? parsed.data : undefined;
  }

  /** Pins the entries a result image was built from: a pinned entry (with its blob and report) is never evicted. */
  async pin(keys: readonly string[], resultImageId: string): Promise<void> {
    if (!isStorableImageId(resultImageId)) throw new ValidationError(`image id '${resultImageId}' cannot name a layer cache pin`, 'image_id');
    const pinned = this.clock.now().toISOString();
    for (const key of new Set(keys)) {
      if (!isHex64(key)) throw new ValidationError(`'${key}' is not a layer cache key (64 hex digits)`, 'key');
      await this.store.put(layerCacheKeys.pin(key, resultImageId), JSON.stringify({ image_id: resultImageId, pinned }), JSON_TYPE);
    }
  }

  /**
   * Removes a result image's pins: on `keys` (its metadata's `cfs_layer_keys`) or, without them,
   * wherever it has one (a listing of every pin). Answers the keys that no image pins any more.
   */
  async unpin(resultImageId: string, keys?: readonly string[]): Promise<string[]> {
    if (!isStorableImageId(resultImageId)) return [];
    const held =
      keys !== undefined
        ? [...new Set(keys)].filter(isHex64)
        : (await this.keysUnder(`${LAYER_CACHE_PREFIX}pins/`)).flatMap(({ key }) => {
            const object = parseLayerCacheKey(key);
            return object?.kind === 'pin' && object.imageId === resultImageId ? [object.key] : [];
          });
    const released: string[] = [];
    for (const key of held) {
      await this.store.delete(layerCacheKeys.pin(key, resultImageId));
      if ((await this.keysUnder(layerCacheKeys.pinsOf(key))).length === 0) released.push(key);
    }
    return released;
  }

  /** Whether any result image pins the key. */
  async isPinned(key: string): Promise<boolean> {
    return isHex64(key) && (await this.keysUnder(layerCacheKeys.pinsOf(key))).length > 0;
  }

  /**
   * Removes the entries built on a source image (read through its `by-source` markers, never a
   * listing of every entry), with their reports and the blobs nothing else uses. An entry a
   * result image pins stays (the result's lineage) until its last pin goes. Answers the keys removed.
   */
  async removeForSourceImage(imageId: string): Promise<string[]> {
    if (!isStorableImageId(imageId)) return [];
    const removed: string[] = [];
    for (const { key: marker } of await this.keysUnder(layerCacheKeys.bySourceOf(imageId))) {
      const object = parseLayerCacheKey(marker);
      if (object?.kind !== 'by-source') continue;
      const entry = await this.readEntry(object.key);
      // A pinned entry keeps its marker too (a sweep would write it back): its last unpin decides.
      if (entry?.image_id === imageId && (await this.isPinned(object.key))) continue;
      if (entry?.image_id === imageId) {
        await this.removeEntry(object.key, entry);
        removed.push(object.key);
      }
      await this.store.delete(marker);
    }
    return removed;
  }

  /** Removes one entry with its report, markers and pins, and its blob when no other entry refers to it. */
  async remove(key: string): Promise<void> {
    if (isHex64(key)) await this.removeEntry(key);
  }

  /**
   * The cache's retention: first the orphans (blobs no entry refers to, reports, pins and
   * markers without their entry, once older than the grace period; entries that do not parse or
   * whose blob is gone), then the least recently used unpinned entries until the distinct blobs'
   * total size is at most `maxBytes` (no eviction without a cap). Missing markers of existing
   * entries are written back, so removals that rely on them stay exact.
   */
  async sweep(options: { maxBytes?: number | null } = {}): Promise<LayerCacheSweep> {
    const now = this.clock.now().getTime();
    const old = (modified: Date) => now - modified.getTime() > this.graceMs;
    const listed = await this.keysUnder(LAYER_CACHE_PREFIX);
    const objects = listed.map((item) => ({ ...item, object: parseLayerCacheKey(item.key) }));
    const present = new Set(listed.map((item) => item.key));

    const entryKeys = objects.flatMap(({ object }) => (object?.kind === 'entry' ? [object.key] : []));
    const read = await mapLimited(entryKeys, this.readConcurrency, async (key) => [key, await this.readEntry(key)] as const);
    const orphans: string[] = [];
    const entries = new Map<string, LayerCacheEntry>();
    for (const [key, entry] of read) {
      // A blob written after the listing passed its name (a record in progress) is asked for again.
      if (entry && (present.has(entry.change_set.key) || (await this.store.head(entry.change_set.key)))) {
        entries.set(key, entry);
        continue;
      }
      // Gone meanwhile (a removal at work): nothing to do.
      if (!(await this.store.head(layerCacheKeys.entry(key)))) continue;
      // Unreadable, or its change set is gone: no reader can use it.
      await this.removeEntry(key, entry);
      orphans.push(layerCacheKeys.entry(key));
    }

    // A blob is kept while an entry uses it, or while a reference younger than the grace period says a record is about to.
    const usedBlobs = new Set([...entries.values()].map((entry) => entry.change_set.sha256));
    for (const { modified, object } of objects) if (object?.kind === 'ref' && !old(modified)) usedBlobs.add(object.sha256);
    const pinned = new Set<string>();
    for (const { key: storeKey, modified, object } of objects) {
      if (object?.kind === 'pin' && entries.has(object.key)) pinned.add(object.key);
      if (!object || object.kind === 'entry' || !old(modified) || belongs(object, entries, usedBlobs)) continue;
      await this.store.delete(storeKey);
      orphans.push(storeKey);
    }
    // Markers an entry lacks (lost to an interrupted write) are written back: removals rely on them.
    for (const entry of entries.values()) {
      for (const marker of [layerCacheKeys.blobRef(entry.change_set.sha256, entry.key), layerCacheKeys.bySource(entry.image_id, entry.key)]) {
        if (!present.has(marker)) await this.store.put(marker, entry.key);
      }
    }

    const blobSize = new Map<string, number>();
    const users = new Map<string, number>();
    for (const entry of entries.values()) {
      blobSize.set(entry.change_set.sha256, entry.change_set.size);
      users.set(entry.change_set.sha256, (users.get(entry.change_set.sha256) ?? 0) + 1);
    }
    let bytes = [...blobSize.values()].reduce((sum, size) => sum + size, 0);
    const evicted: string[] = [];
    const cap = options.maxBytes;
    if (cap !== undefined && cap !== null && bytes > cap) {
      const candidates = [...entries.values()]
        .filter((entry) => !pinned.has(entry.key))
        .sort((a, b) => Date.parse(a.last_used) - Date.parse(b.last_used) || Date.parse(a.created) - Date.parse(b.created) || (a.key < b.key ? -1 : 1));
      for (const entry of candidates) {
        if (bytes <= cap) break;
        // Pinned meanwhile (a result registered during the sweep): it stays.
        if (await this.isPinned(entry.key)) continue;
        await this.removeEntry(entry.key, entry);
        evicted.push(entry.key);
        const left = (users.get(entry.change_set.sha256) ?? 1) - 1;
        users.set(entry.change_set.sha256, left);
        if (left === 0) bytes -= entry.change_set.size;
      }
    }
    return { orphans, evicted, bytes };
  }

  /** Removes an entry (first, so no reader finds it), then its report, markers and pins, then its blob if no entry refers to it any more. */
  private async removeEntry(key: string, known?: LayerCacheEntry): Promise<void> {
    const entry = known ?? (await this.readEntry(key));
    await this.store.delete(layerCacheKeys.entry(key));
    await this.store.delete(layerCacheKeys.changes(key));
    for (const { key: pin } of await this.keysUnder(layerCacheKeys.pinsOf(key))) await this.store.delete(pin);
    if (!entry) return;
    await this.store.delete(layerCacheKeys.bySource(entry.image_id, key));
    await this.releaseBlob(entry.change_set.sha256, key);
  }

  /** Drops `key`'s reference to a blob, and the blob when no other entry refers to it. */
  private async releaseBlob(sha256: string, key: string): Promise<void> {
    await this.store.delete(layerCacheKeys.blobRef(sha256, key));
    if ((await this.keysUnder(layerCacheKeys.blobRefsOf(sha256))).length === 0) await this.store.delete(layerCacheKeys.blob(sha256));
  }

  private async readEntry(key: string): Promise<LayerCacheEntry | undefined> {
    const parsed = layerCacheEntrySchema.safeParse(await this.readJson(layerCacheKeys.entry(key)));
    return parsed.success && parsed.data.key === key ? parsed.data : undefined;
  }

  /** A small JSON object; undefined when it is missing or not JSON. */
  private async readJson(storeKey: string): Promise<unknown> {
    let body;
    try {
      body = await this.store.get(storeKey);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
  }

  /**
   * The objects under a directory prefix with when each was written: listed where the store can
   * say (the filesystem store walks only that directory); otherwise every key counts as written
   * just now, so nothing is taken for an old orphan.
   */
  private async keysUnder(prefix: string): Promise<Array<{ key: string; modified: Date }>> {
    if (this.store.listModified) return this.store.listModified(prefix);
    const now = this.clock.now();
    return (await this.store.list(prefix)).map((key) => ({ key, modified: now }));
  }
}

/** Whether a blob, report or marker is one a live entry (or, for a blob, a record in progress) accounts for. */
function belongs(object: LayerCacheObject, entries: ReadonlyMap<string, LayerCacheEntry>, usedBlobs: ReadonlySet<string>): boolean {
  switch (object.kind) {
    case 'blob':
      return usedBlobs.has(object.sha256);
    case 'ref':
      return entries.get(object.key)?.change_set.sha256 === object.sha256;
    case 'by-source':
      return entries.get(object.key)?.image_id === object.imageId;
    case 'changes':
    case 'pin':
      return entries.has(object.key);
    case 'entry':
      return true;
  }
}

/** `work` over `items`, at most `limit` at once, results in the items' order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
