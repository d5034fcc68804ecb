import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetentionSweeper } from '../../functions/adapters/local/retention-sweeper.ts';
import { cleanupState } from '../../functions/handlers/cleanup.ts';
import { createImage, deleteImage } from '../../functions/core/images/index.ts';
import { layerCacheKeys } from '../../functions/core/layer-cache/entry.ts';
import { LayerCache } from '../../functions/core/layer-cache/layer-cache.ts';
import { diskShareCapBytes, layerCacheCapBytes, layerKeysOf, LAYER_KEYS_METADATA } from '../../functions/core/layer-cache/retention.ts';
import type { ImageRecord } from '../../functions/core/model/image.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { publishCompletedResults } from '../../functions/steps/record-artifacts.ts';
import { DEFAULT_LAYER_CACHE_SETTINGS } from '../../functions/steps/step-ports.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';
import { imageWorld, type ImageWorld } from './images-fakes.ts';

const sha256Of = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
const keyOf = (label: string) => sha256Of(`key ${label}`);

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'layer-cache-retention-'));
});
afterEach(async () => rm(work, { recursive: true, force: true }));

/** Records layer `label` of source image `imageId` in `cache`, its change set `content`. */
async function record(cache: LayerCache, label: string, imageId: string, content: string | Buffer) {
  const bytes = Buffer.from(content);
  const path = join(work, `${label}.squashfs`);
  await writeFile(path, bytes);
  return cache.record({
    key: keyOf(label),
    parent_key: null,
    image_id: imageId,
    source_rootfs_sha256: sha256Of(`root of ${imageId}`),
    layer_index: 0,
    layer_name: label,
    session: 'recording-session',
    runner_version: '1',
    changeSetPath: path,
    sha256: sha256Of(bytes),
    size: bytes.length,
    changes: { key: keyOf(label), image_id: imageId, layer_index: 0, files: [], files_truncated: false, packages: null },
  });
}

describe('deleting an image releases its part of the layer cache', () => {
  let world: ImageWorld;
  let cache: LayerCache;
  beforeEach(async () => {
    world = await imageWorld();
    cache = new LayerCache(world.artifacts, world.deps.clock);
  });
  afterEach(async () => world.cleanup());

  it('removes the entries built on a deleted source image and leaves those of other images', async () => {
    // Arrange
    const source = await createImage(world.deps, { name: 'source' });
    const other = await createImage(world.deps, { name: 'other' });
    await record(cache, 'source-0', source.id, 'source layer 0');
    await record(cache, 'source-1', source.id, 'source layer 1');
    await record(cache, 'other-0', other.id, 'other layer 0');
    // Act
    await deleteImage(world.deps, source.id);
    // Assert
    expect(await cache.find(keyOf('source-0'), { maxAgeSeconds: 3600 })).toBeUndefined();
    expect(await cache.find(keyOf('source-1'), { maxAgeSeconds: 3600 })).toBeUndefined();
    expect(await cache.find(keyOf('other-0'), { maxAgeSeconds: 3600 })).toBeDefined();
    expect(await world.artifacts.list('layer-cache/blobs/')).toEqual([layerCacheKeys.blob(sha256Of('other layer 0'))]);
  });

  it("removes a deleted result's pins, and then the entries whose source image is gone", async () => {
    // Arrange: the result pins both layers; the source is deleted first (its pinned entries stay for the result's lineage).
    const source = await createImage(world.deps, { name: 'source' });
    const living = await createImage(world.deps, { name: 'living source' });
    await record(cache, 'gone-0', source.id, 'layer of a deleted source');
    await record(cache, 'living-0', living.id, 'layer of a living source');
    const keys = [keyOf('gone-0'), keyOf('living-0')];
    // cfs_* metadata is the workflow's own (the API refuses it): the record is made as record-artifacts leaves it.
    const result: ImageRecord = { id: 'result-1', name: 'result', created: '2026-03-04T05:06:07.000Z', arch: 'x86_64', metadata: { cfs_session: 's1', [LAYER_KEYS_METADATA]: keys.join(',') } };
    await world.registry.create(result);
    await cache.pin(keys, result.id);
    await deleteImage(world.deps, source.id);
    const keptForLineage = await cache.changes(keyOf('gone-0'));
    // Act
    await deleteImage(world.deps, result.id);
    // Assert
    expect(keptForLineage).toBeDefined();
    expect(await cache.isPinned(keyOf('gone-0'))).toBe(false);
    expect(await cache.isPinned(keyOf('living-0'))).toBe(false);
    expect(await cache.find(keyOf('gone-0'), { maxAgeSeconds: 3600 })).toBeUndefined();
    expect(await cache.find(keyOf('living-0'), { maxAgeSeconds: 3600 })).toBeDefined();
  });
});

describe('the layer keys a result image names', () => {
  it('are read from its cfs_layer_keys metadata, in order, keeping only keys', () => {
    // Act
    const keys = layerKeysOf({ metadata: { [LAYER_KEYS_METADATA]: `${keyOf('a')},${keyOf('b')},not-a-key` } });
    const none = layerKeysOf({ metadata: { cfs_session: 's' } });
    // Assert
    expect(keys).toEqual([keyOf('a'), keyOf('b')]);
    expect(none).toEqual([]);
  });
});

describe("a completed session's results pin their layers", () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  it('pins the keys in each result image metadata when the results are shown, again on a retry', async () => {
    // Arrange
    const cache = new LayerCache(ports.artifacts, ports.clock);
    await record(cache, 'layer-0', 'source-1', 'layer 0');
    await ports.images.create({
      id: 'result-1',
      name: 'result',
      created: '2026-11-26T10:00:00Z',
      arch: 'x86_64',
      metadata: { cfs_session: 's1', [LAYER_KEYS_METADATA]: keyOf('layer-0') },
      pending_session: 's1',
    });
    const base = pendingSession('s1', { Compute: ['source-1'] });
    const session: SessionRecord = {
      ...base,
      status: { ...base.status, session: { ...base.status.session, status: 'complete', succeeded: 'true' }, artifacts: [{ image_id: 'source-1', result_id: 'result-1', type: 'ims_customized_image' }] },
    };
    // Act
    await publishCompletedResults(ports, session, true);
    await publishCompletedResults(ports, session, false);
    // Assert
    expect(await ports.artifacts.list(layerCacheKeys.pinsOf(keyOf('layer-0')))).toEqual([layerCacheKeys.pin(keyOf('layer-0'), 'result-1')]);
    expect(await cache.sweep({ maxBytes: 0 })).toMatchObject({ evicted: [], bytes: 7 });
  });
});

describe("the embedded server's retention sweep", () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  function sweeper(maxBytes: number | null) {
    return new RetentionSweeper({
      ...ports,
      settings: async () => ({ sessionTtlSeconds: 0, layerCache: { ...DEFAULT_LAYER_CACHE_SETTINGS, maxBytes } }),
      workDir: join(work, 'work'),
      busySessions: () => new Set(),
      log: () => undefined,
      layerCacheDiskDir: work,
    });
  }

  it('evicts least recently used layer cache entries down to the setting layer_cache_max_bytes', async () => {
    // Arrange
    const cache = new LayerCache(ports.artifacts, ports.clock);
    await record(cache, 'older', 'source-1', Buffer.alloc(100, 1));
    ports.setNow('2026-11-26T11:00:00Z');
    await record(cache, 'newer', 'source-1', Buffer.alloc(100, 2));
    await mkdir(join(work, 'work'), { recursive: true });
    // Act
    const swept = await sweeper(150).sweep();
    // Assert
    expect(swept.layerCache).toMatchObject({ evicted: [keyOf('older')], bytes: 100 });
  });

  it("caps the cache at a tenth of the data directory's filesystem when the setting is null", async () => {
    // Arrange
    const cache = new LayerCache(ports.artifacts, ports.clock);
    await record(cache, 'only', 'source-1', Buffer.alloc(100, 1));
    // Act
    const swept = await sweeper(null).sweep();
    // Assert
    expect(swept.layerCache).toMatchObject({ evicted: [], bytes: 100 });
    expect(layerCacheCapBytes(null, diskShareCapBytes(1000))).toBe(100);
    expect(layerCacheCapBytes(40, diskShareCapBytes(1000))).toBe(40);
  });
});

describe("AWS: each session's Cleanup sweeps the layer cache", () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  it('evicts down to the setting layer_cache_max_bytes, and a failing sweep does not fail the step', async () => {
    // Arrange
    const cache = new LayerCache(ports.artifacts, ports.clock);
    await record(cache, 'older', 'source-1', Buffer.alloc(100, 1));
    ports.setNow('2026-11-26T11:00:00Z');
    await record(cache, 'newer', 'source-1', Buffer.alloc(100, 2));
    const settings = async () => ({ ...(await ports.settings()), layerCache: { ...DEFAULT_LAYER_CACHE_SETTINGS, maxBytes: 100 } });
    const failing = { ...ports, settings: async () => Promise.reject(new Error('options table unavailable')) };
    // Act
    const output = await cleanupState.run({ ...ports, settings }, { session: 's1' });
    const failed = await cleanupState.run(failing, { session: 's1' });
    // Assert
    expect(output).toEqual({});
    expect(failed).toEqual({});
    expect(await cache.find(keyOf('older'), { maxAgeSeconds: 86_400 })).toBeUndefined();
    expect(await cache.find(keyOf('newer'), { maxAgeSeconds: 86_400 })).toBeDefined();
  });
});
