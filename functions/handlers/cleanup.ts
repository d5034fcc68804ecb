import { awsRoot } from '../adapters/aws/index.ts';
import { DEFAULT_AWS_LAYER_CACHE_MAX_BYTES, layerCacheCapBytes, sweepLayerCache } from '../core/layer-cache/retention.ts';
import { cleanup } from '../steps/cleanup.ts';
import type { StepPorts } from '../steps/step-ports.ts';
import { sessionInput } from './shared/inputs.ts';
import { logger, stepHandler } from './shared/step-handler.ts';

/**
 * The layer cache grows only when sessions run, so in AWS each session's Cleanup sweeps it to
 * its cap: the setting `layer_cache_max_bytes`, whose default is the CDK setting
 * `layerCacheMaxBytes` (env LAYER_CACHE_MAX_BYTES), else 100 GiB. Best effort: a failure is
 * logged and the next session's Cleanup sweeps again (the embedded server sweeps on a timer).
 */
async function sweepLayerCacheAfterSession(ports: Pick<StepPorts, 'artifacts' | 'clock' | 'settings'>): Promise<void> {
  try {
    const cap = layerCacheCapBytes((await ports.settings()).layerCache?.maxBytes, DEFAULT_AWS_LAYER_CACHE_MAX_BYTES);
    const swept = await sweepLayerCache(ports.artifacts, ports.clock, cap);
    logger.info('layer cache swept', { cap, bytes: swept.bytes, evicted: swept.evicted.length, orphans: swept.orphans.length });
  } catch (error) {
    logger.warn('layer cache sweep failed', { error: error as Error });
  }
}

/**
 * Cleanup: removes the run document, then sweeps the layer cache. On AWS there is no workspace
 * to remove: the runner's disk is its ECS task's ephemeral storage, gone with the task.
 */
export const cleanupState = {
  state: 'Cleanup',
  input: sessionInput,
  run: async (ports: Pick<StepPorts, 'artifacts' | 'clock' | 'settings'>, parsed: { session: string }) => {
    await cleanup({ artifacts: ports.artifacts }, parsed);
    await sweepLayerCacheAfterSession(ports);
    return {};
  },
};

export const handler = stepHandler({ ...cleanupState, ports: () => awsRoot().stepPorts() });
