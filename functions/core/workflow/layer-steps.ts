import type { SessionRecord, SessionStep } from '../model/session.ts';

/** One layer as the runner's progress document reports it. */
export interface LayerProgress {
  index: number;
  name: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cached';
  start_time?: string;
  end_time?: string;
  cached?: { session: string; created: string };
}

// A cached layer has ended too: a stale report never shows it running again.
const ENDED = new Set<SessionStep['state']>(['succeeded', 'failed', 'skipped', 'cached']);

/**
 * Writes each layer's state into `status.steps` as `{name: 'ansible', layer}` entries (after
 * the `ansible` step itself), so status shows which layer runs now and how long each took.
 * Pending layers get no entry; an ended entry is never moved back by a stale report.
 */
export function applyLayerProgress(record: SessionRecord, layers: LayerProgress[]): SessionRecord {
  const steps = [...(record.status.steps ?? [])];
  let changed = false;
  for (const layer of layers) {
    if (layer.state === 'pending') continue;
    const next: SessionStep = { name: 'ansible', layer: layer.name, state: layer.state };
    if (layer.start_time) next.start_time = layer.start_time;
    if (layer.end_time) next.end_time = layer.end_time;
    if (layer.cached) next.cached_from = layer.cached;
    const index = steps.findIndex((s) => s.name === 'ansible' && s.layer === layer.name && s.image_id === undefined);
    if (index === -1) {
      steps.push(next);
      changed = true;
      continue;
    }
    const current = steps[index]!;
    if (ENDED.has(current.state) || JSON.stringify(current) === JSON.stringify(next)) continue;
    steps[index] = next;
    changed = true;
  }
  return changed ? { ...record, status: { ...record.status, steps } } : record;
}
