import type { ConfigurationRecord } from '../model/configuration.ts';
import type { PinnedLayer } from '../model/session.ts';
import { fieldError } from './validation.ts';

const FIELD = 'configuration_limit';

/** The name a layer is pinned and logged under: its own, or `layer<index>` when it has none. */
export function layerName(layer: { name?: string }, index: number): string {
  return layer.name ?? `layer${index}`;
}

/**
 * Applies `configuration_limit` and pins the layers a session runs, in configuration order.
 * The limit is a comma list of exact layer names (an unnamed layer answers to `layer<index>`)
 * or of 0-based indices; unlike CFS's operator it never matches substrings and never drops
 * an unknown entry silently: both are a 400.
 */
export function pinLayers(configuration: ConfigurationRecord, limit: string): PinnedLayer[] {
  const all = configuration.layers.map((layer, index) => ({
    index,
    pinned: {
      name: layerName(layer, index),
      clone_url: layer.clone_url,
      commit: layer.commit,
      playbook: layer.playbook,
      ...(layer.source !== undefined ? { source: layer.source } : {}),
    },
  }));
  const entries = limit
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) return all.map((l) => l.pinned);
  const chosen = new Set<number>();
  if (entries.every((e) => /^\d+$/.test(e))) {
    for (const entry of entries) {
      const index = Number(entry);
      if (index >= all.length) {
        throw fieldError(FIELD, `layer index ${index} is out of range: configuration '${configuration.name}' has ${all.length} layer(s) (0-based)`);
      }
      chosen.add(index);
    }
  } else {
    for (const entry of entries) {
      const matches = all.filter((l) => l.pinned.name === entry);
      if (matches.length === 0) {
        const known = all.map((l) => l.pinned.name).join(', ') || 'none';
        throw fieldError(FIELD, `configuration '${configuration.name}' has no layer named '${entry}' (layers: ${known})`);
      }
      for (const m of matches) chosen.add(m.index);
    }
  }
  return all.filter((l) => chosen.has(l.index)).map((l) => l.pinned);
}
