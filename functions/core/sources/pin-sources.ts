import type { PinnedLayer } from '../model/session.ts';
import type { AppPorts } from '../../ports/index.ts';
import { fieldError } from '../sessions/validation.ts';

/**
 * A session pins each source-backed layer's source as it is at creation: its current clone URL,
 * the name of its secret (never the secret) and its CA bundle. The runner's clone reads the
 * secret by that name, outside the layer's sandbox. A source that is gone fails the create (400).
 */
export async function pinSources(ports: Partial<Pick<AppPorts, 'sources'>>, layers: PinnedLayer[]): Promise<PinnedLayer[]> {
  return Promise.all(
    layers.map(async (layer) => {
      if (layer.source === undefined) return layer;
      const source = await ports.sources?.get(layer.source.name);
      if (!source) throw fieldError('configuration_name', `layer '${layer.name}' names source '${layer.source.name}', which does not exist`);
      return {
        ...layer,
        clone_url: source.clone_url,
        source: {
          name: source.name,
          secret_name: source.credentials.secret_name,
          ...(source.ca_cert?.pem !== undefined ? { ca_pem: source.ca_cert.pem } : {}),
        },
      };
    }),
  );
}
