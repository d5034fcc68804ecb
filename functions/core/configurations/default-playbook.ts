/**
 * CFS v2 requires only `cloneUrl` in a layer and runs `site.yml` when a layer names no playbook
 * (V2ConfigurationLayer); v3 requires `playbook` (V3ConfigurationLayer), so only v2 bodies get it.
 */
export const DEFAULT_PLAYBOOK = 'site.yml';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A configuration body (already in v3 spelling, see normalizeConfigurationBody) whose layers
 * without `playbook` get CFS's default, for the v2 endpoints; the v3 ones take it as sent. A
 * layer that is not an object is left for the schema to refuse.
 */
export function withDefaultPlaybooks(body: unknown, version: 'v2' | 'v3'): unknown {
  if (version !== 'v2' || !isObject(body) || !Array.isArray(body.layers)) return body;
  return { ...body, layers: body.layers.map((layer: unknown) => (isObject(layer) && layer.playbook === undefined ? { ...layer, playbook: DEFAULT_PLAYBOOK } : layer)) };
}
