import { createReadStream } from 'node:fs';
import { z } from 'zod';
import type { ArtifactStore, StoredObject } from '../../ports/artifact-store.ts';
import type { RunDocument, RunOutcome } from '../workflow/run-document.ts';
import { runnerPrefixOf } from '../workflow/session-keys.ts';
import { layerChangesSchema, type LayerChanges } from './entry.ts';
import { imageLayerKeys } from './keys.ts';
import type { LayerCache } from './layer-cache.ts';

/**
 * The runner never writes the layer cache itself. A layer is someone else's code, and on
 * Fargate it shares the runner's credentials: with write access under `layer-cache/` it could
 * plant a change set under another configuration's key and reach every later session built on
 * it. So the runner leaves each finished layer's change set, changes report and claim under its
 * own unguessable prefix (`runner/<token>/layer-cache/<key>/`), and the control plane, which
 * computes every key itself from its own run document, records what it finds there for the
 * layers the outcome says succeeded. A playbook can then spoil only its own keys: the layers it
 * ran itself, for the configuration that runs it.
 */

const JSON_TYPE = { contentType: 'application/json' };

/** Where the runner of a run leaves one layer's record for one image. */
export function stagedLayerKeys(runnerPrefix: string, key: string) {
  const prefix = `${runnerPrefix}layer-cache/${key}/`;
  return { changeSet: `${prefix}change-set.squashfs`, changes: `${prefix}changes.json`, claim: `${prefix}claim.json` };
}

/** What the runner says of a staged change set: its bytes (checked when it is recorded). */
const claimSchema = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() });

/**
 * Runner side: leaves one layer's change set, report and claim under the run's own prefix. With
 * `adopt` (a store on this machine) the change set file is moved into the store, not copied.
 * The claim is the digest and size the store measured as it took the bytes (one read of them);
 * answers it.
 */
export async function stageLayerRecord(
  store: ArtifactStore,
  document: Pick<RunDocument, 'outcome_key'>,
  record: { key: string; changeSetPath: string; changes: LayerChanges },
  adopt?: (key: string, file: string) => Promise<StoredObject>,
): Promise<{ sha256: string; size: number }> {
  const runnerPrefix = runnerPrefixOf(document.outcome_key);
  if (!runnerPrefix) throw new Error(`the run document's outcome key ${document.outcome_key} is not under a runner prefix`);
  const keys = stagedLayerKeys(runnerPrefix, record.key);
  const stored = adopt ? await adopt(keys.changeSet, record.changeSetPath) : await store.put(keys.changeSet, createReadStream(record.changeSetPath, { highWaterMark: 4 << 20 }));
  await store.put(keys.changes, JSON.stringify(layerChangesSchema.parse(record.changes)), JSON_TYPE);
  // The claim last: a staged record without one is ignored.
  const claim = { sha256: stored.sha256, size: stored.size };
  await store.put(keys.claim, JSON.stringify(claim), JSON_TYPE);
  return claim;
}

/** What promoting one run's staged records did. */
export interface PromotedLayers {
  recorded: number;
  /** One line per staged record refused (its bytes not the claimed ones, a report that does not parse). */
  refused: string[];
}

/**
 * Control-plane side: for each image (of `imageIds`, default all) marks the entries of the
 * layers the outcome says were cached as used, and for each layer it says succeeded (ran, not
 * cached) records the staged change set under the key this side
 * computes from its own run document, with the session, image and layer names from it too. The
 * runner's word is only the bytes and the report of its own layers.
 */
export async function promoteStagedLayers(
  cache: LayerCache,
  store: ArtifactStore,
  document: RunDocument,
  outcome: Pick<RunOutcome, 'layers'>,
  runnerVersion: string,
  imageIds?: readonly string[],
): Promise<PromotedLayers> {
  const result: PromotedLayers = { recorded: 0, refused: [] };
  const runnerPrefix = runnerPrefixOf(document.outcome_key);
  if (!document.layer_cache || !runnerPrefix) return result;
  for (const image of document.images) {
    if (imageIds && !imageIds.includes(image.image_id)) continue;
    const keys = imageLayerKeys(document, image, runnerVersion);
    for (const [position, layer] of document.layers.entries()) {
      const key = keys[position]!;
      // A reused layer: its entry was just used (eviction goes least recently used first).
      if (outcome.layers[position]?.state === 'cached') await cache.touch(key);
      if (outcome.layers[position]?.state !== 'succeeded') continue;
      const staged = stagedLayerKeys(runnerPrefix, key);
      const claim = claimSchema.safeParse(await readJson(store, staged.claim));
      if (!claim.success) continue;
      const changes = layerChangesSchema.safeParse(await readJson(store, staged.changes));
      if (!changes.success || changes.data.key !== key || changes.data.image_id !== image.image_id || changes.data.layer_index !== layer.index) {
        result.refused.push(`layer ${layer.index} of image ${image.image_id}: its changes report is not this layer's`);
        for (const staleKey of [staged.changeSet, staged.changes, staged.claim]) await store.delete(staleKey);
        continue;
      }
      try {
        await cache.recordStaged(
          {
            key,
            parent_key: position === 0 ? null : keys[position - 1]!,
            image_id: image.image_id,
            source_rootfs_sha256: image.rootfs.sha256,
            layer_index: layer.index,
            layer_name: layer.name,
            session: document.session,
            runner_version: runnerVersion,
            sha256: claim.data.sha256,
            size: claim.data.size,
            changes: changes.data,
          },
          staged.changeSet,
        );
        result.recorded += 1;
      } catch (error) {
        result.refused.push(`layer ${layer.index} of image ${image.image_id}: ${(error as Error).message}`);
      }
      // Recorded or refused, nothing of it stays under the runner's prefix.
      for (const staleKey of [staged.changeSet, staged.changes, staged.claim]) await store.delete(staleKey);
    }
  }
  return result;
}

async function readJson(store: ArtifactStore, key: string): Promise<unknown> {
  if (!(await store.head(key))) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key)) chunks.push(chunk as Buffer);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}
