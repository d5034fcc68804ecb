import type { PinnedLayer } from '../model/session.ts';
import type { AppPorts } from '../../ports/index.ts';
import { fieldError } from '../sessions/validation.ts';

/**
 * A session pins each source-backed layer's clone URL as the source has it at creation (the
 * layer keeps the source's name, for render-inventory to name its secret to the runner). A
 * source that is gone fails the create (400).
 */
export async function pinSources(ports: Partial<Pick<AppPorts, 'sources'>>, layers: PinnedLayer[]): Promise<PinnedLayer[]> {
  return Promise.all(
    layers.map(async (layer) => {
      if (layer.source === undefined) return layer;
      const source = await ports.sources?.get(layer.source);
      if (!source) throw fieldError('configuration_name', `layer '${layer.name}' names source '${layer.source}', which does not exist`);
      return { ...layer, clone_url: source.clone_url };
    }),
  );
}
