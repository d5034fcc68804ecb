import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { layerCacheKeys, type LayerChanges } from '../../functions/core/layer-cache/entry.ts';
import { imageLayerKeys } from '../../functions/core/layer-cache/keys.ts';
import { LayerCache } from '../../functions/core/layer-cache/layer-cache.ts';
import { promoteStagedLayers, stageLayerRecord, stagedLayerKeys } from '../../functions/core/layer-cache/staged-records.ts';
import type { RunDocument, RunOutcome } from '../../functions/core/workflow/run-document.ts';

const VERSION = '0.1.0+runner.1';
const TOKEN = 'ab'.repeat(16);
const sha256Of = (bytes: string) => createHash('sha256').update(bytes).digest('hex');

function runDocument(): RunDocument {
  return {
    session: 'staged-1',
    images: [
      {
        image_id: 'img-1',
        source_name: 'base',
        arch: 'x86_64',
        rootfs: { key: 'boot-images/img-1/rootfs', size: 10, sha256: sha256Of('source rootfs') },
        result_name: 'out',
        result_id: 'res-1',
        upload_prefix: `runner/${TOKEN}/results/res-1/`,
      },
    ],
    inventory: { all: { children: { Compute: { hosts: { 'img-1': {} } } } } },
    layers: [0, 1, 2].map((index) => ({ index, name: `layer-${index}`, clone_url: 'file:///repo', commit: String(index).repeat(40), playbook: 'site.yml' })),
    ansible: { limit: '', verbosity: 0, passthrough: [] },
    squashfs: { compressor: 'source' },
    allowed_schemes: ['file'],
    outcome_key: `runner/${TOKEN}/runner-outcome.json`,
    logs_prefix: `runner/${TOKEN}/logs/`,
    layer_cache: { reuse: true, max_age_seconds: 604_800 },
  };
}

function outcomeWith(states: Array<RunOutcome['layers'][number]['state']>): Pick<RunOutcome, 'layers'> {
  return { layers: states.map((state, index) => ({ index, name: `layer-${index}`, exit_code: state === 'succeeded' ? 0 : null, duration_ms: 1, log_key: `l${index}`, state })) };
}

function report(key: string, index: number): LayerChanges {
  return { key, image_id: 'img-1', layer_index: index, files: [{ path: `/etc/layer-${index}`, change: 'added', type: 'file' }], files_truncated: false, packages: null };
}

describe('the layer records a runner stages and the control plane records', () => {
  let work: string;
  let store: FsArtifactStore;
  let cache: LayerCache;
  const document = runDocument();
  const keys = imageLayerKeys(document, document.images[0]!, VERSION);

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'layer-cache-staged-'));
    store = new FsArtifactStore(join(work, 'store'));
    cache = new LayerCache(store);
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  /** What a runner leaves for layer `index`: a change set file of its own bytes, staged under the run's prefix. */
  async function stage(index: number, bytes = `change set ${index}`, claim?: { sha256: string; size: number }): Promise<void> {
    const path = join(work, `cs-${index}`);
    await writeFile(path, bytes);
    const claimed = await stageLayerRecord(store, document, { key: keys[index]!, changeSetPath: path, changes: report(keys[index]!, index) });
    expect(claimed).toEqual({ sha256: sha256Of(bytes), size: Buffer.byteLength(bytes) });
    // A lying claim, as a playbook holding the runner's credentials could write.
    if (claim) await store.put(stagedLayerKeys(`runner/${TOKEN}/`, keys[index]!).claim, JSON.stringify(claim));
  }

  it('records the layers the outcome says succeeded under the keys it computes, with its own names, and moves the change sets out of the runner prefix', async () => {
    // Arrange: layers 0 and 1 succeeded, layer 2 failed (the runner staged nothing for it).
    await stage(0);
    await stage(1);

    // Act
    const promoted = await promoteStagedLayers(cache, store, document, outcomeWith(['succeeded', 'succeeded', 'failed']), VERSION);

    // Assert
    expect(promoted).toEqual({ recorded: 2, refused: [] });
    const entry = await cache.find(keys[1]!, { maxAgeSeconds: 60 });
    expect(entry).toMatchObject({ key: keys[1], parent_key: keys[0], image_id: 'img-1', layer_index: 1, layer_name: 'layer-1', session: 'staged-1', runner_version: VERSION });
    expect(entry?.change_set.sha256).toBe(sha256Of('change set 1'));
    expect(await cache.find(keys[2]!, { maxAgeSeconds: 60 })).toBeUndefined();
    for (const staged of Object.values(stagedLayerKeys(`runner/${TOKEN}/`, keys[0]!))) expect(await store.head(staged)).toBeUndefined();
    expect((await cache.changes(keys[0]!))?.files[0]?.path).toBe('/etc/layer-0');
  });

  it('records nothing for a cached or failed layer, whatever was staged for it', async () => {
    await stage(0);
    await stage(1);

    const promoted = await promoteStagedLayers(cache, store, document, outcomeWith(['cached', 'failed', 'skipped']), VERSION);

    expect(promoted.recorded).toBe(0);
    expect(await cache.find(keys[0]!, { maxAgeSeconds: 60 })).toBeUndefined();
    expect(await cache.find(keys[1]!, { maxAgeSeconds: 60 })).toBeUndefined();
  });

  it('marks the entries of the layers a run reused as used, so eviction keeps them longest', async () => {
    // Arrange: layer 0 recorded by an earlier run, an hour ago.
    await stage(0);
    const clock = { current: new Date(Date.now() - 3600_000), now() { return this.current; } };
    await promoteStagedLayers(new LayerCache(store, clock), store, document, outcomeWith(['succeeded', 'skipped', 'skipped']), VERSION);
    const before = (await cache.find(keys[0]!, { maxAgeSeconds: 7200 }))!.last_used;

    // Act: a later run reused it.
    await promoteStagedLayers(cache, store, document, outcomeWith(['cached', 'skipped', 'skipped']), VERSION);

    // Assert
    const after = (await cache.find(keys[0]!, { maxAgeSeconds: 7200 }))!.last_used;
    expect(Date.parse(after) - Date.parse(before)).toBeGreaterThan(3000_000);
  });

  it('refuses a staged change set whose bytes are not the claimed ones, and keeps no blob of it', async () => {
    await stage(0, 'change set 0', { sha256: sha256Of('something else'), size: 12 });

    const promoted = await promoteStagedLayers(cache, store, document, outcomeWith(['succeeded', 'skipped', 'skipped']), VERSION);

    expect(promoted.recorded).toBe(0);
    expect(promoted.refused[0]).toMatch(/layer 0 of image img-1: .*not the 12 bytes with sha256/);
    expect(await cache.find(keys[0]!, { maxAgeSeconds: 60 })).toBeUndefined();
    expect(await store.head(layerCacheKeys.blob(sha256Of('something else')))).toBeUndefined();
  });

  it('never records what a runner staged under a key the control plane did not compute (another configuration\'s layer)', async () => {
    // Arrange: a record staged under a made-up key, as a playbook could, beside the real layer 0.
    const planted = sha256Of('another configuration');
    const path = join(work, 'planted');
    await writeFile(path, 'planted');
    await stageLayerRecord(store, document, { key: planted, changeSetPath: path, changes: { ...report(planted, 0) } });
    await stage(0);

    // Act
    await promoteStagedLayers(cache, store, document, outcomeWith(['succeeded', 'skipped', 'skipped']), VERSION);

    // Assert
    expect(await cache.find(planted, { maxAgeSeconds: 60 })).toBeUndefined();
    expect(await cache.find(keys[0]!, { maxAgeSeconds: 60 })).toBeDefined();
  });

  it('refuses a changes report that names another layer', async () => {
    await stage(0);
    await store.put(stagedLayerKeys(`runner/${TOKEN}/`, keys[0]!).changes, JSON.stringify(report(keys[1]!, 1)));

    const promoted = await promoteStagedLayers(cache, store, document, outcomeWith(['succeeded', 'skipped', 'skipped']), VERSION);

    expect(promoted).toEqual({ recorded: 0, refused: ["layer 0 of image img-1: its changes report is not this layer's"] });
  });
});
