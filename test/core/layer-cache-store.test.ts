import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { layerCacheKeys, type LayerChanges } from '../../functions/core/layer-cache/entry.ts';
import { CorruptEntryError, LayerCache, type LayerCacheRecord } from '../../functions/core/layer-cache/layer-cache.ts';
import { IntegrityError } from '../../functions/core/errors.ts';
import type { ArtifactStore } from '../../functions/ports/artifact-store.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';

const BUCKET = 'layer-cache-test';
const HOUR = 3600_000;

const sha256Of = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
/** A cache key made from a label (keys are 64 hex digits). */
const keyOf = (label: string) => sha256Of(`key ${label}`);

/** A clock the test moves; starts at the real time, so the stores' own write times are "now". */
class TestClock {
  current = new Date();
  now(): Date {
    return this.current;
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

let work: string;
let s3: LocalS3;
let storeCount = 0;

/** A fresh, empty store of each kind: a directory, or its own prefix of the s3rver bucket. */
const STORES: Array<[string, () => Promise<ArtifactStore>]> = [
  ['the filesystem store', async () => new FsArtifactStore(await mkdtemp(join(work, 'store-')))],
  ['the S3 store on s3rver', async () => new S3ArtifactStore(s3.client, { bucket: BUCKET, prefix: `t${++storeCount}` })],
];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'layer-cache-'));
  s3 = await startLocalS3(join(work, 's3'), [BUCKET]);
});
afterAll(async () => {
  await s3.close();
  await rm(work, { recursive: true, force: true });
});

describe.each(STORES)('the layer cache on %s', (_name, makeStore) => {
  let store: ArtifactStore;
  let clock: TestClock;
  let cache: LayerCache;

  beforeEach(async () => {
    store = await makeStore();
    clock = new TestClock();
    cache = new LayerCache(store, clock);
  });

  /** A change set file of `content` on this machine, with its sha256 and size. */
  async function changeSet(content: string | Buffer): Promise<{ path: string; sha256: string; size: number }> {
    const bytes = Buffer.from(content);
    const path = join(work, `cs-${sha256Of(bytes).slice(0, 16)}-${Math.random().toString(16).slice(2)}.squashfs`);
    await writeFile(path, bytes);
    return { path, sha256: sha256Of(bytes), size: bytes.length };
  }

  function changesOf(key: string, imageId: string, layerIndex: number): LayerChanges {
    return {
      key,
      image_id: imageId,
      layer_index: layerIndex,
      files: [{ path: '/etc/motd', change: 'modified', type: 'file' }],
      files_truncated: false,
      packages: { manager: 'dpkg', changes: [{ name: 'hello', old: null, new: '2.10-3' }] },
    };
  }

  /** Records layer `label` of `imageId` with a change set of `content`. */
  async function record(label: string, imageId: string, content: string | Buffer, extra: Partial<LayerCacheRecord> = {}) {
    const cs = await changeSet(content);
    const key = keyOf(label);
    return cache.record({
      key,
      parent_key: null,
      image_id: imageId,
      source_rootfs_sha256: sha256Of(`rootfs of ${imageId}`),
      layer_index: 0,
      layer_name: `layer ${label}`,
      session: 'session-1',
      runner_version: '1.0.0',
      changeSetPath: cs.path,
      sha256: cs.sha256,
      size: cs.size,
      changes: changesOf(key, imageId, 0),
      ...extra,
    });
  }

  const exists = async (key: string) => (await store.head(key)) !== undefined;

  it('finds a recorded entry, with its blob and report stored under the keys the contract names', async () => {
    // Arrange
    const recorded = await record('a', 'image-1', 'change set a');
    // Act
    const found = await cache.find(keyOf('a'), { maxAgeSeconds: 3600 });
    const changes = await cache.changes(keyOf('a'));
    // Assert
    expect(found).toEqual(recorded);
    expect(found).toMatchObject({
      key: keyOf('a'),
      image_id: 'image-1',
      change_set: { key: `layer-cache/blobs/${sha256Of('change set a')}.squashfs`, sha256: sha256Of('change set a'), size: 12 },
      changes_key: `layer-cache/changes/${keyOf('a')}.json`,
    });
    expect(await exists(`layer-cache/entries/${keyOf('a')}.json`)).toBe(true);
    expect(await exists(found!.change_set.key)).toBe(true);
    expect(changes?.packages?.changes).toEqual([{ name: 'hello', old: null, new: '2.10-3' }]);
  });

  it('does not reuse an entry older than the maximum age', async () => {
    // Arrange
    await record('a', 'image-1', 'change set a');
    clock.advance(7 * 86_400_000 + 1000);
    // Act
    const tooOld = await cache.find(keyOf('a'), { maxAgeSeconds: 7 * 86_400 });
    const withLongerAge = await cache.find(keyOf('a'), { maxAgeSeconds: 8 * 86_400 });
    // Assert
    expect(tooOld).toBeUndefined();
    expect(withLongerAge?.key).toBe(keyOf('a'));
  });

  it('takes a malformed entry, or one pointing at another blob, for no entry', async () => {
    // Arrange
    const recorded = await record('a', 'image-1', 'change set a');
    await store.put(layerCacheKeys.entry(keyOf('b')), '{ not json');
    await store.put(layerCacheKeys.entry(keyOf('c')), JSON.stringify({ ...recorded, key: keyOf('c'), changes_key: layerCacheKeys.changes(keyOf('c')), change_set: { ...recorded.change_set, key: 'boot-images/x/rootfs' } }));
    // Act
    const malformed = await cache.find(keyOf('b'), { maxAgeSeconds: 3600 });
    const elsewhere = await cache.find(keyOf('c'), { maxAgeSeconds: 3600 });
    // Assert
    expect(malformed).toBeUndefined();
    expect(elsewhere).toBeUndefined();
  });

  it('downloads a change set whose bytes match its entry', async () => {
    // Arrange
    const entry = await record('a', 'image-1', 'change set a');
    const target = join(work, `fetched-${storeCount}-${Date.now()}`);
    // Act
    await cache.fetchChangeSet(entry, target);
    // Assert
    expect(await readFile(target, 'utf8')).toBe('change set a');
  });

  it('refuses a corrupt change set, removes its entry and leaves nothing downloaded', async () => {
    // Arrange
    const entry = await record('a', 'image-1', 'change set a');
    await store.put(entry.change_set.key, 'change set b');
    const target = join(work, `corrupt-${storeCount}-${Date.now()}`);
    // Act
    const fetching = cache.fetchChangeSet(entry, target);
    // Assert
    await expect(fetching).rejects.toBeInstanceOf(CorruptEntryError);
    await expect(fetching).rejects.toThrow(/hashes to sha256/);
    expect(existsSync(target)).toBe(false);
    expect(await cache.find(keyOf('a'), { maxAgeSeconds: 3600 })).toBeUndefined();
    expect(await exists(entry.change_set.key)).toBe(false);
    expect(await cache.changes(keyOf('a'))).toBeUndefined();
  });

  it('refuses a change set whose blob is gone or longer than named', async () => {
    // Arrange
    const gone = await record('a', 'image-1', 'change set a');
    const longer = await record('b', 'image-1', 'change set b');
    await store.delete(gone.change_set.key);
    await store.put(longer.change_set.key, 'change set b, and more');
    // Act
    const fetchGone = cache.fetchChangeSet(gone, join(work, `gone-${Date.now()}`));
    const fetchLonger = cache.fetchChangeSet(longer, join(work, `longer-${Date.now()}`));
    // Assert (together, so neither rejects before its expectation is attached)
    await Promise.all([
      expect(fetchGone).rejects.toThrow(/is missing; the entry was removed/),
      expect(fetchLonger).rejects.toThrow(/more than the 12 bytes named/),
    ]);
    expect(await cache.find(keyOf('a'), { maxAgeSeconds: 3600 })).toBeUndefined();
    expect(await cache.find(keyOf('b'), { maxAgeSeconds: 3600 })).toBeUndefined();
  });

  it('still refuses a corrupt change set when its entry cannot be removed (a reader without list or delete rights)', async () => {
    // Arrange
    const entry = await record('a', 'image-1', 'change set a');
    await store.put(entry.change_set.key, 'change set b');
    const denied = new Set<PropertyKey>(['delete', 'list', 'listModified']);
    const readOnly = new Proxy(store, {
      get(target, property) {
        if (denied.has(property)) return async () => Promise.reject(new Error('Access Denied'));
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    // Act
    const fetching = new LayerCache(readOnly, clock).fetchChangeSet(entry, join(work, `denied-${Date.now()}`));
    // Assert
    await expect(fetching).rejects.toBeInstanceOf(CorruptEntryError);
    await expect(fetching).rejects.toThrow(/the entry could not be removed \(Access Denied\)/);
    expect(await cache.find(keyOf('a'), { maxAgeSeconds: 3600 })).toBeDefined();
  });

  it('refuses to record a change set that is not the sha256 given, keeping no entry', async () => {
    // Arrange
    const cs = await changeSet('actual bytes');
    // Act
    const recording = cache.record({
      key: keyOf('a'),
      parent_key: null,
      image_id: 'image-1',
      source_rootfs_sha256: sha256Of('root'),
      layer_index: 0,
      layer_name: 'a',
      session: 's',
      runner_version: '1',
      changeSetPath: cs.path,
      sha256: sha256Of('other bytes!'),
      size: cs.size,
      changes: changesOf(keyOf('a'), 'image-1', 0),
    });
    // Assert
    await expect(recording).rejects.toBeInstanceOf(IntegrityError);
    expect(await cache.find(keyOf('a'), { maxAgeSeconds: 3600 })).toBeUndefined();
    expect(await exists(layerCacheKeys.blob(sha256Of('other bytes!')))).toBe(false);
  });

  it('evicts the least recently used entries until the change sets fit the cap', async () => {
    // Arrange: three 100-byte change sets recorded an hour apart; the oldest is used again last.
    await record('first', 'image-1', Buffer.alloc(100, 1));
    clock.advance(HOUR);
    await record('second', 'image-1', Buffer.alloc(100, 2));
    clock.advance(HOUR);
    await record('third', 'image-1', Buffer.alloc(100, 3));
    clock.advance(HOUR);
    await cache.touch(keyOf('first'));
    // Act
    const toTwo = await cache.sweep({ maxBytes: 200 });
    const toOne = await cache.sweep({ maxBytes: 150 });
    // Assert
    expect(toTwo).toMatchObject({ evicted: [keyOf('second')], bytes: 200 });
    expect(toOne).toMatchObject({ evicted: [keyOf('third')], bytes: 100 });
    expect(await cache.find(keyOf('first'), { maxAgeSeconds: 86_400 })).toBeDefined();
    expect(await exists(layerCacheKeys.blob(sha256Of(Buffer.alloc(100, 2))))).toBe(false);
    expect(await exists(layerCacheKeys.changes(keyOf('third')))).toBe(false);
  });

  it('never evicts a pinned entry, and lets it go once its last pin is removed', async () => {
    // Arrange
    await record('pinned', 'image-1', Buffer.alloc(100, 1));
    clock.advance(HOUR);
    await record('free', 'image-1', Buffer.alloc(100, 2));
    await cache.pin([keyOf('pinned')], 'result-1');
    await cache.pin([keyOf('pinned')], 'result-2');
    // Act
    const swept = await cache.sweep({ maxBytes: 0 });
    const releasedFirst = await cache.unpin('result-1', [keyOf('pinned')]);
    const releasedLast = await cache.unpin('result-2');
    const afterUnpin = await cache.sweep({ maxBytes: 0 });
    // Assert
    expect(swept).toMatchObject({ evicted: [keyOf('free')], bytes: 100 });
    expect(releasedFirst).toEqual([]);
    expect(releasedLast).toEqual([keyOf('pinned')]);
    expect(afterUnpin).toMatchObject({ evicted: [keyOf('pinned')], bytes: 0 });
  });

  it('counts a blob two entries share once, and keeps it while the newer one stays', async () => {
    // Arrange: the oldest and the newest entry share 64 bytes; the one between has 100 of its own.
    const shared = Buffer.alloc(64, 9);
    await record('one', 'image-1', shared);
    clock.advance(HOUR);
    await record('two', 'image-1', Buffer.alloc(100, 2));
    clock.advance(HOUR);
    const three = await record('three', 'image-2', shared);
    const target = join(work, `shared-${Date.now()}`);
    // Act
    const swept = await cache.sweep({ maxBytes: 100 });
    await cache.fetchChangeSet(three, target);
    // Assert: evicting 'one' freed nothing, so 'two' went too.
    expect(swept).toMatchObject({ evicted: [keyOf('one'), keyOf('two')], bytes: 64 });
    expect(await readFile(target)).toEqual(shared);
  });

  it('keeps a shared blob while one entry still refers to it', async () => {
    // Arrange
    const shared = Buffer.alloc(64, 9);
    const one = await record('one', 'image-1', shared);
    await record('two', 'image-2', shared);
    // Act
    await cache.remove(keyOf('one'));
    const afterOne = await exists(one.change_set.key);
    await cache.remove(keyOf('two'));
    const afterBoth = await exists(one.change_set.key);
    // Assert
    expect(afterOne).toBe(true);
    expect(afterBoth).toBe(false);
  });

  it('removes the entries built on one source image, and only those', async () => {
    // Arrange
    const shared = Buffer.alloc(64, 9);
    await record('a0', 'image-a', 'only a');
    await record('a1', 'image-a', shared);
    const b0 = await record('b0', 'image-b', shared);
    // Act
    const removed = await cache.removeForSourceImage('image-a');
    // Assert
    expect(removed.sort()).toEqual([keyOf('a0'), keyOf('a1')].sort());
    expect(await cache.find(keyOf('a0'), { maxAgeSeconds: 3600 })).toBeUndefined();
    expect(await cache.find(keyOf('a1'), { maxAgeSeconds: 3600 })).toBeUndefined();
    expect(await cache.find(keyOf('b0'), { maxAgeSeconds: 3600 })).toEqual(b0);
    expect(await cache.changes(keyOf('b0'))).toBeDefined();
    expect(await cache.changes(keyOf('a1'))).toBeUndefined();
    expect(await exists(layerCacheKeys.blob(sha256Of('only a')))).toBe(false);
    expect(await exists(b0.change_set.key)).toBe(true);
    expect(await store.list('layer-cache/by-source/image-a/')).toEqual([]);
  });

  it('keeps an entry a result image pins when its source image is deleted', async () => {
    // Arrange
    await record('a0', 'image-a', 'only a');
    await cache.pin([keyOf('a0')], 'result-1');
    // Act
    const removed = await cache.removeForSourceImage('image-a');
    // Assert
    expect(removed).toEqual([]);
    expect(await cache.changes(keyOf('a0'))).toBeDefined();
    expect(await store.list('layer-cache/by-source/image-a/')).toEqual([layerCacheKeys.bySource('image-a', keyOf('a0'))]);
  });

  it('removes orphans older than the grace period and leaves what a record in progress just wrote', async () => {
    // Arrange: a live entry, then what interrupted writes and lost entries leave.
    const live = await record('live', 'image-1', 'live bytes');
    await store.put(layerCacheKeys.blob(sha256Of('lost')), 'lost');
    await store.put(layerCacheKeys.changes(keyOf('lost')), '{}');
    await store.put(layerCacheKeys.pin(keyOf('lost'), 'result-9'), '{}');
    await store.put(layerCacheKeys.bySource('image-9', keyOf('lost')), keyOf('lost'));
    await store.put(layerCacheKeys.blobRef(sha256Of('lost'), keyOf('lost')), keyOf('lost'));
    const broken = await record('broken', 'image-1', 'broken bytes');
    await store.delete(broken.change_set.key);
    // Act
    const early = await cache.sweep();
    clock.advance(2 * HOUR);
    const late = await cache.sweep();
    // Assert
    expect(early.orphans).toEqual([layerCacheKeys.entry(keyOf('broken'))]);
    expect(late.orphans.sort()).toEqual(
      [
        layerCacheKeys.blob(sha256Of('lost')),
        layerCacheKeys.changes(keyOf('lost')),
        layerCacheKeys.pin(keyOf('lost'), 'result-9'),
        layerCacheKeys.bySource('image-9', keyOf('lost')),
        layerCacheKeys.blobRef(sha256Of('lost'), keyOf('lost')),
      ].sort(),
    );
    expect((await store.list('layer-cache/')).sort()).toEqual(
      [
        layerCacheKeys.entry(keyOf('live')),
        live.change_set.key,
        layerCacheKeys.changes(keyOf('live')),
        layerCacheKeys.bySource('image-1', keyOf('live')),
        layerCacheKeys.blobRef(live.change_set.sha256, keyOf('live')),
      ].sort(),
    );
  });

  it('keeps an old blob a record in progress has just claimed, before its entry exists', async () => {
    // Arrange: the blob is older than the grace period; a new record's reference to it is not.
    const graceful = new LayerCache(store, { now: () => new Date() }, { orphanGraceSeconds: 3 });
    await store.put(layerCacheKeys.blob(sha256Of('reused')), 'reused');
    await store.put(layerCacheKeys.blob(sha256Of('unclaimed')), 'unclaimed');
    await new Promise((resolve) => setTimeout(resolve, 4500));
    await store.put(layerCacheKeys.blobRef(sha256Of('reused'), keyOf('new')), keyOf('new'));
    // Act
    const swept = await graceful.sweep();
    // Assert
    expect(swept.orphans).toEqual([layerCacheKeys.blob(sha256Of('unclaimed'))]);
    expect(await exists(layerCacheKeys.blob(sha256Of('reused')))).toBe(true);
  });

  it('records a key again with a new change set, releasing the blob it no longer uses', async () => {
    // Arrange
    const before = await record('a', 'image-1', 'old bytes');
    // Act
    const after = await record('a', 'image-1', 'new bytes');
    // Assert
    expect(after.change_set.sha256).toBe(sha256Of('new bytes'));
    expect(await exists(before.change_set.key)).toBe(false);
    expect(await exists(after.change_set.key)).toBe(true);
  });
});
