import type { SessionRecord, SessionStep } from '../model/session.ts';
import type { RunOutcome } from './run-document.ts';

/**
 * The layer cache's part of a session's status (issue 19), from the runner's outcome: a layer the
 * runner took from the cache is a `cached` layer step naming the session that recorded it and
 * when (`cached_from`), and each source image's layer keys are kept under `status.layer_keys`, so
 * the changes route finds each layer's report after the run document is gone.
 */

/** The result image's metadata key holding its layer keys, in layer order, joined by `,`. */
export const LAYER_KEYS_METADATA_KEY = 'cfs_layer_keys';

type OutcomeImage = RunOutcome['images'][number];

/**
 * An image's layer keys by layer index: the keys the outcome names from layer 0 on, up to the
 * first layer it names none for (the runner stops at a failed layer; nothing after it has a key).
 */
export function layerKeysInOrder(image: Pick<OutcomeImage, 'layer_keys'>): string[] {
  const byIndex = new Map((image.layer_keys ?? []).map((k) => [k.index, k.key]));
  const keys: string[] = [];
  while (byIndex.has(keys.length)) keys.push(byIndex.get(keys.length)!);
  return keys;
}

/** Each source image's layer keys, for `status.layer_keys`; undefined when the outcome names none (the cache was off). */
export function layerKeysOf(outcome: Pick<RunOutcome, 'images'>): Record<string, string[]> | undefined {
  const entries = outcome.images.map((image) => [image.image_id, layerKeysInOrder(image)] as const).filter(([, keys]) => keys.length > 0);
  return entries.length ? Object.fromEntries(entries) : undefined;
}

/**
 * The record with the outcome's cached layers and layer keys written in. A cached layer's entry
 * becomes `cached` whatever the live progress last said of it (the outcome is the runner's final
 * word); every other step is left as it is. Returns the same record when nothing changes.
 */
export function applyLayerCacheOutcome(record: SessionRecord, outcome: Pick<RunOutcome, 'layers' | 'images'>): SessionRecord {
  const steps = [...(record.status.steps ?? [])];
  let changed = false;
  for (const layer of outcome.layers) {
    if (layer.state !== 'cached') continue;
    const index = steps.findIndex((s) => s.name === 'ansible' && s.layer === layer.name && s.image_id === undefined);
    const current: SessionStep | undefined = index === -1 ? undefined : steps[index];
    const next: SessionStep = {
      ...(current ?? { name: 'ansible', layer: layer.name }),
      state: 'cached',
      ...(layer.cached ? { cached_from: { session: layer.cached.session, created: layer.cached.created } } : {}),
    };
    if (current && JSON.stringify(current) === JSON.stringify(next)) continue;
    if (index === -1) steps.push(next);
    else steps[index] = next;
    changed = true;
  }
  const keys = layerKeysOf(outcome);
  const keysChanged = keys !== undefined && JSON.stringify(keys) !== JSON.stringify(record.status.layer_keys);
  if (!changed && !keysChanged) return record;
  return { ...record, status: { ...record.status, ...(changed ? { steps } : {}), ...(keysChanged ? { layer_keys: keys } : {}) } };
}

/** How old a cached entry is, in words (`2 h`, `5 min`, `3 d`), from its creation to `now`. */
export function cachedAge(created: string, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(created)) / 1000));
  if (Number.isNaN(seconds)) return 'age unknown';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

/** "cached (from session S, 2 h old)": how a cached layer is shown by the CLI and the dashboard. */
export function cachedLabel(from: { session: string; created: string } | undefined, now: Date): string {
  return from ? `cached (from session ${from.session}, ${cachedAge(from.created, now)} old)` : 'cached';
}
