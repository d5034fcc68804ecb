import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { imageLayerKeys } from '../core/layer-cache/keys.ts';
import { stageLayerRecord } from '../core/layer-cache/staged-records.ts';
import type { ArtifactStore } from '../ports/artifact-store.ts';
import { CorruptEntryError, type LayerCache, type LayerCacheEntry } from '../core/layer-cache/layer-cache.ts';
import type { RunDocument, RunImage, RunLayer, RunOutcome } from '../core/workflow/run-document.ts';
import { captureChangeSet } from './change-sets/capture.ts';
import { changesReport } from './change-sets/changes-report.ts';
import { sha256OfFile } from './change-sets/format.ts';
import { savePackageDatabases } from './change-sets/package-diff.ts';
import { mountOverlay, mountReadOnlyView, unmountOverlay } from './change-sets/overlay.ts';
import { materializeRedirects } from './change-sets/redirects.ts';
import { applyToTree, ChangeSetDigestError, restoreAsLower } from './change-sets/restore.ts';
import { diffToUpper, snapshotTree, type TreeSnapshot } from './change-sets/tree-compare.ts';
import { RunnerFailure } from './failures.ts';
import type { LocalStore } from './local-store.ts';
import type { ProcessGroups } from './process-groups.ts';
import type { ProgressRecorder } from './progress.ts';
import { RUNNER_VERSION } from './runner-version.ts';
import { chownToNamespaceRoot, type IdMapping } from './user-namespace.ts';
import type { WorkspaceLayout } from './workspace.ts';

/**
 * How a layer's changes are captured: `overlay` (each root an overlayfs whose upper directory is
 * the layer's change set: the namespace sandbox, where the runner may mount) or `tree` (the
 * tree compared before and after the layer: container mode, where it may not, as on Fargate).
 */
export type ChangeCapture = 'overlay' | 'tree';

/** One image's side of the layer cache in a run. */
interface ImageLayers {
  image: RunImage;
  /** Every layer's key for this image, in layer order. */
  keys: string[];
  /** The inventory's path of the root (`images/<id>`): the overlay mount point, or the plain tree. */
  root: string;
  /** `stack/<id>`: the unpacked source (`base`), each layer's change set and work dir (overlay), or scratch space (tree). */
  stack: string;
  /** Overlay: the lower directories so far, oldest first (the source, then each layer's change set). */
  lowers: string[];
  /** Tree: the root before the running layer. */
  before?: TreeSnapshot;
}

/** What the layer cache's part of a run needs. */
export interface CachedLayersOptions {
  document: RunDocument & { layer_cache: NonNullable<RunDocument['layer_cache']> };
  outcome: RunOutcome;
  layout: WorkspaceLayout;
  groups: ProcessGroups;
  mapping: IdMapping | undefined;
  cache: LayerCache;
  /** Where the run's finished layers are staged (its own prefix), for the control plane to record. */
  store: ArtifactStore;
  local?: LocalStore;
  capture: ChangeCapture;
  progress: ProgressRecorder;
  log: (line: string) => void;
  now: () => Date;
}

/**
 * The runner's side of the layer cache (issue 19). Every image gets its layers' keys
 * (keys.ts, also put into the outcome); with `reuse`, the longest prefix of layers cached for
 * EVERY image is restored from the cache instead of run (layers run for all images together, in
 * one ansible-playbook per layer, so the prefix is the minimum over the session's images); each
 * layer that then runs and succeeds is captured, reported and recorded for each image; a failed
 * layer is never recorded (the ones before it are: creating the session again resumes there).
 *
 * On the overlay path each root is an overlay mount over the source and the change sets so far,
 * with the running layer's change set as its upper directory; base, uppers and work directories
 * share `stack/<id>` (the root's tmpfs when it is in RAM, so the layers' growth stays in its
 * grant). On the tree path the root is a plain tree, snapshotted before each layer.
 */
export class CachedLayers {
  private readonly images: ImageLayers[];
  /** The capture path: the overlay one falls back to comparing trees where the workspace cannot carry an overlay. */
  private capture: ChangeCapture;
  /** The layers' recordings still running in the background (overlay path), chained one after another. */
  private recording: Promise<void> = Promise.resolve();

  constructor(private readonly options: CachedLayersOptions) {
    const { document, layout } = options;
    this.capture = options.capture;
    this.images = document.images.map((image) => ({
      image,
      keys: imageLayerKeys(document, image, RUNNER_VERSION),
      root: join(layout.images, image.image_id),
      stack: join(stackDirectory(layout), image.image_id),
      lowers: [],
    }));
    for (const [i, image] of this.images.entries()) {
      options.outcome.images[i]!.layer_keys = image.keys.map((key, position) => ({ index: document.layers[position]!.index, key }));
    }
  }

  /** Where stageImage unpacks an image: under its stack on the overlay path (`<stack>/base`), at the root on the tree path. */
  stagingOf(imageId: string): { stack?: string } {
    const image = this.images.find((i) => i.image.image_id === imageId);
    return this.capture === 'overlay' && image ? { stack: image.stack } : {};
  }

  /**
   * Creates the stacks' directory (the namespace's root unpacks into it) and each image's stack;
   * on the overlay path, first tries an overlay there (a workspace on a filesystem overlayfs
   * cannot use as upper, such as another overlay, takes the tree-compare path instead).
   */
  async prepare(): Promise<ChangeCapture> {
    const top = stackDirectory(this.options.layout);
    await mkdir(top, { mode: 0o700 });
    if (this.options.mapping) await chownToNamespaceRoot(top, this.options.mapping);
    if (this.capture === 'overlay') {
      const probe = join(top, 'probe');
      try {
        for (const dir of ['lower', 'upper', 'work', 'merged']) await mkdir(join(probe, dir), { recursive: true });
        await mountOverlay({ target: join(probe, 'merged'), lowers: [join(probe, 'lower')], upper: join(probe, 'upper'), work: join(probe, 'work') });
        await unmountOverlay(join(probe, 'merged'));
      } catch (error) {
        this.options.log(`layer cache: an overlay cannot be mounted in the workspace (${(error as Error).message.trim().split('\n').at(-1)}); comparing trees instead`);
        this.capture = 'tree';
      } finally {
        await rm(probe, { recursive: true, force: true });
      }
    }
    for (const image of this.images) {
      await mkdir(image.stack, { mode: 0o700 });
      if (this.options.mapping) await chownToNamespaceRoot(image.stack, this.options.mapping);
    }
    this.options.log(`layer cache: changes captured ${this.capture === 'overlay' ? 'with an overlay per layer' : 'by comparing each tree before and after its layer'}${this.options.document.layer_cache.reuse ? '' : '; nothing reused (reuse off)'}`);
    return this.capture;
  }

  /**
   * The number of leading layers found in the cache (younger than the document's maximum age)
   * for every image; 0 without `reuse`.
   */
  async cachedPrefix(): Promise<{ count: number; entries: LayerCacheEntry[][] }> {
    const { document, cache } = this.options;
    if (!document.layer_cache.reuse) return { count: 0, entries: this.images.map(() => []) };
    const entries: LayerCacheEntry[][] = [];
    for (const image of this.images) {
      const found: LayerCacheEntry[] = [];
      for (const key of image.keys) {
        const entry = await cache.find(key, { maxAgeSeconds: document.layer_cache.max_age_seconds }).catch(() => undefined);
        if (!entry) break;
        found.push(entry);
      }
      entries.push(found);
    }
    return { count: Math.min(...entries.map((e) => e.length)), entries };
  }

  /**
   * Stages the cached prefix onto the staged roots: per layer, every image's change set is
   * verified first (in place with a local store, else downloaded and checked), then applied (as
   * an overlay lower, or merged into the tree). A change set that does not match its digest is
   * discarded (its entry removed) and the prefix ends there. Marks the restored layers `cached`
   * in the outcome and the progress and touches their entries. Returns how many layers it restored.
   */
  async restore(found: { count: number; entries: LayerCacheEntry[][] }): Promise<number> {
    const { document, log } = this.options;
    for (const image of this.images) if (this.capture === 'overlay') image.lowers = [join(image.stack, 'base')];
    let restored = 0;
    for (let position = 0; position < found.count; position += 1) {
      const layer = document.layers[position]!;
      const files: Array<{ path: string; temporary: boolean }> = [];
      let discarded = false;
      for (const [i, image] of this.images.entries()) {
        const entry = found.entries[i]![position]!;
        const file = await this.verifiedChangeSet(image, entry, layer);
        if (!file) {
          discarded = true;
          break;
        }
        files.push(file);
      }
      try {
        if (discarded) break;
        for (const [i, image] of this.images.entries()) await this.apply(image, found.entries[i]![position]!, files[i]!.path, layer);
      } finally {
        for (const file of files) if (file.temporary) await rm(file.path, { force: true });
      }
      restored = position + 1;
    }
    for (let position = 0; position < restored; position += 1) {
      const layer = document.layers[position]!;
      const used = found.entries.map((e) => e[position]!);
      // The oldest of the images' entries: the layer is as old as its oldest part.
      const oldest = used.reduce((a, b) => (Date.parse(b.created) < Date.parse(a.created) ? b : a));
      const record = this.options.outcome.layers[position]!;
      record.state = 'cached';
      record.exit_code = null;
      record.cached = { session: oldest.session, created: oldest.created };
      log(`layer ${layer.index} '${layer.name}': cached (from session ${oldest.session}, recorded ${oldest.created}, ${age(this.options.now().getTime() - Date.parse(oldest.created))} old)`);
      // The control plane marks the entries used (LRU) when it reads the outcome: the runner does not write the cache.
      await this.options.progress.cached(position, record.cached);
    }
    return restored;
  }

  /** The change set of `entry` checked against its sha256: where it lies (local store) or a download; undefined when it was discarded. */
  private async verifiedChangeSet(image: ImageLayers, entry: LayerCacheEntry, layer: RunLayer): Promise<{ path: string; temporary: boolean } | undefined> {
    const { cache, local, layout, log } = this.options;
    const discard = (detail: string) =>
      log(`layer ${layer.index} '${layer.name}': the cached change set of image ${image.image.image_id} (${entry.change_set.key}) does not match its digest: discarded, the layer runs again (${detail})`);
    if (local) {
      const path = local.pathOf(entry.change_set.key);
      const measured = await sha256OfFile(path).catch((error: Error) => ({ error }));
      if ('sha256' in measured && measured.sha256 === entry.change_set.sha256 && measured.size === entry.change_set.size) return { path, temporary: false };
      discard('error' in measured ? measured.error.message : `sha256 ${measured.sha256}, ${measured.size} bytes`);
      await cache.remove(entry.key).catch(() => undefined);
      return undefined;
    }
    const download = join(layout.downloads, `${image.image.image_id}.layer-${layer.index}.squashfs`);
    try {
      await cache.fetchChangeSet(entry, download);
      await chmod(download, 0o644);
      return { path: download, temporary: true };
    } catch (error) {
      if (!(error instanceof CorruptEntryError)) throw new RunnerFailure('staging', `the cached change set of layer ${layer.index} for image ${image.image.image_id} could not be read: ${(error as Error).message}`);
      discard(error.message);
      return undefined;
    }
  }

  /** Applies one verified change set to an image: a new overlay lower, or merged into the plain tree. */
  private async apply(image: ImageLayers, entry: LayerCacheEntry, changeSet: string, layer: RunLayer): Promise<void> {
    const { layout, groups, mapping } = this.options;
    const common = { changeSet, expectedSha256: entry.change_set.sha256, workspaceRoot: layout.root, groups, ...(mapping ? { mapping } : {}) };
    try {
      if (this.capture === 'overlay') {
        const dir = join(await this.layerDirectory(image, `layer-${layer.index}`), 'upper');
        await restoreAsLower({ ...common, dir });
        image.lowers.push(dir);
      } else {
        const scratch = join(image.stack, 'scratch');
        await applyToTree({ ...common, root: image.root, scratch });
        await rm(scratch, { recursive: true, force: true });
      }
    } catch (error) {
      // Verified a moment ago: a mismatch now means the file changed under the runner.
      const detail = error instanceof ChangeSetDigestError ? 'changed after it was verified' : (error as Error).message;
      throw new RunnerFailure('staging', `the cached change set of layer ${layer.index} '${layer.name}' for image ${image.image.image_id} could not be restored: ${detail}`, {
        image: image.image.image_id,
      });
    }
  }

  /**
   * Before a layer runs: on the overlay path each root is mounted as an overlay of the source
   * and the change sets so far, with this layer's empty change set as its upper; on the tree
   * path each root is snapshotted.
   */
  async beforeLayer(layer: RunLayer): Promise<void> {
    for (const image of this.images) {
      if (this.capture === 'tree') {
        image.before = await snapshotTree(image.root);
        // The tree before is gone once the layer ran: its package databases are kept for the report.
        await rm(packagesBefore(image), { recursive: true, force: true });
        await savePackageDatabases(image.root, packagesBefore(image));
        continue;
      }
      await this.mountLayer(image, `layer-${layer.index}`);
    }
  }

  /**
   * After a layer succeeded, for each image: unmount its overlay (or compare the tree with its
   * snapshot into an upper-form directory), then capture the change set, report what changed, and
   * stage both for the cache. On the overlay path that recording runs in the background while the
   * next layer runs (the upper is final once unmounted: it is only ever a lower after), one
   * recording after another, its squash at idle CPU priority so it takes only what the playbook
   * leaves; `settle` waits for them. A recording that fails is logged and the run goes on (the
   * cache is a shortcut, never a result); the change set stays the next layer's lower either way.
   */
  async afterLayer(layer: RunLayer, position: number): Promise<void> {
    for (const image of this.images) {
      const dir = join(image.stack, `layer-${layer.index}`);
      const upper = join(dir, 'upper');
      if (this.capture === 'overlay') {
        await unmountOverlay(image.root);
        await rm(join(dir, 'work'), { recursive: true, force: true });
        const lowers = [...image.lowers];
        image.lowers.push(upper);
        this.recording = this.recording.then(() => this.record({ image, layer, position, dir, upper, lowers, background: true }));
        continue;
      }
      // The tree path reads the live tree: recorded before the next layer changes it.
      await this.layerDirectory(image, `layer-${layer.index}`);
      await mkdir(upper, { mode: 0o755 });
      await diffToUpper({ root: image.root, before: image.before!, upper, groups: this.options.groups });
      await this.record({ image, layer, position, dir, upper, lowers: image.lowers, background: false });
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Resolves when every layer's recording has ended (before the roots are packed, or the run ends). */
  settle(): Promise<void> {
    return this.recording;
  }

  /** Captures, reports and stages one layer's change set of one image; never rejects (a failure is logged). */
  private async record(o: { image: ImageLayers; layer: RunLayer; position: number; dir: string; upper: string; lowers: string[]; background: boolean }): Promise<void> {
    const { layout, groups, mapping, log } = this.options;
    const { image, layer, position, dir, upper, lowers } = o;
    const output = join(layout.results, `${image.image.image_id}.layer-${layer.index}.squashfs`);
    const materialized = join(dir, 'materialized');
    try {
      const started = performance.now();
      // A directory renamed from a lower layer is a redirect in the upper: captured as the full directory it shows.
      const captureFrom = this.capture === 'overlay' ? ((await materializeRedirects({ upper, lowers, work: materialized, groups })) ?? upper) : upper;
      const key = image.keys[position]!;
      // The squash (CPU) and the report (mostly waiting on lstat, getfattr and mounts) side by side; both settle before anything is removed.
      const [captured, reported] = await Promise.allSettled([
        captureChangeSet({ upper: captureFrom, output, workspaceRoot: layout.root, groups, idle: o.background, ...(mapping ? { mapping } : {}) }),
        this.report(image, captureFrom, lowers, key, layer),
      ]);
      if (captured.status === 'rejected') throw captured.reason;
      if (reported.status === 'rejected') throw reported.reason;
      const changes = reported.value;
      const capturedAt = performance.now();
      // Staged under the run's own prefix: the control plane records it under the key it computes itself (staged-records.ts).
      const { local } = this.options;
      const stored = await stageLayerRecord(this.options.store, this.options.document, { key, changeSetPath: output, changes }, local ? (to, file) => local.adopt(to, file) : undefined);
      const took = `captured and reported in ${seconds(capturedAt - started)}${o.background ? ' (in the background)' : ''}, stored in ${seconds(performance.now() - capturedAt)}`;
      log(`layer ${layer.index} '${layer.name}': change set of image ${image.image.image_id} kept for the layer cache (${(stored.size / (1 << 20)).toFixed(1)} MiB, ${changes.files.length}${changes.files_truncated ? '+' : ''} path(s) changed; ${took})`);
    } catch (error) {
      log(`layer ${layer.index} '${layer.name}': the change set of image ${image.image.image_id} was not recorded in the layer cache: ${(error as Error).message}`);
    } finally {
      await rm(output, { force: true }).catch(() => undefined);
      await rm(materialized, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** What the layer changed in one image: the upper against read-only views of the tree before and after it. */
  private async report(image: ImageLayers, upper: string, lowers: string[], key: string, layer: RunLayer): Promise<Awaited<ReturnType<typeof changesReport>>> {
    const { groups, mapping } = this.options;
    const common = { upper, key, image_id: image.image.image_id, layer_index: layer.index, groups, log: this.options.log, ...(mapping ? { mapping } : {}) };
    if (this.capture === 'tree') {
      // No mounts on this path: the tree before is the snapshot, which changesReport's tree form reads.
      return changesReport({ ...common, before: image.root, after: image.root, beforeSnapshot: image.before!, beforePackages: packagesBefore(image) });
    }
    const before = join(image.stack, 'before');
    const after = join(image.stack, 'after');
    await mkdir(before, { recursive: true, mode: 0o755 });
    await mkdir(after, { recursive: true, mode: 0o755 });
    try {
      await mountReadOnlyView({ target: before, lowers });
      await mountReadOnlyView({ target: after, lowers: [...lowers, upper] });
      return await changesReport({ ...common, before, after });
    } finally {
      await unmountOverlay(after).catch(() => undefined);
      await unmountOverlay(before).catch(() => undefined);
    }
  }

  /**
   * After the last layer (or when every layer came from the cache): each root becomes the merged
   * overlay again, for the checks, the packing and the boot test (a fresh upper takes what they
   * write). Nothing to do on the tree path.
   */
  async mountResult(): Promise<void> {
    if (this.capture === 'tree') return;
    for (const image of this.images) await this.mountLayer(image, 'result');
  }

  /** Mounts an image's root as an overlay of its lowers with `<stack>/<name>/upper` as upper (mountOverlay gives it the tree's root's owner and mode). */
  private async mountLayer(image: ImageLayers, name: string): Promise<void> {
    const dir = await this.layerDirectory(image, name);
    await mkdir(image.root, { recursive: true, mode: 0o755 });
    await mountOverlay({ target: image.root, lowers: image.lowers, upper: join(dir, 'upper'), work: join(dir, 'work') });
  }

  /** `<stack>/<name>`, made for the namespace's root: it unpacks and squashes the change set there. */
  private async layerDirectory(image: ImageLayers, name: string): Promise<string> {
    const dir = join(image.stack, name);
    await mkdir(dir, { mode: 0o700 });
    if (this.options.mapping) await chownToNamespaceRoot(dir, this.options.mapping);
    return dir;
  }
}

/** Where the tree path keeps an image's package databases from before the running layer. */
function packagesBefore(image: ImageLayers): string {
  return join(image.stack, 'packages-before');
}

/** `stack`: the layer cache's directory in the workspace (shorter than `images`, so removals unmount the overlays above it first). */
export function stackDirectory(layout: WorkspaceLayout): string {
  return join(layout.root, 'stack');
}

/** Milliseconds as seconds for a log line. */
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** An age as people say it: minutes under an hour, hours under two days, else days. */
export function age(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} d`;
}
