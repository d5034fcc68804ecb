import { LayerCache } from '../core/layer-cache/layer-cache.ts';
import { promoteStagedLayers } from '../core/layer-cache/staged-records.ts';
import type { RunDocument, RunOutcome } from '../core/workflow/run-document.ts';
import { RUNNER_VERSION } from '../runner/runner-version.ts';
import type { StepPorts } from './step-ports.ts';

/**
 * Records in the layer cache the layers the runner ran for these images (all when none are
 * named), from what it staged under its own prefix (see staged-records.ts): on success from
 * PackageImage, on failure from FailSession, so a session created again resumes after the
 * layers that succeeded. The cache is an optimisation: a record that fails or is refused is
 * reported on stderr (the function's log) and never fails the step.
 */
export async function recordRunnerLayers(
  ports: Pick<StepPorts, 'artifacts' | 'clock'>,
  document: RunDocument | undefined,
  outcome: Pick<RunOutcome, 'layers'> | undefined,
  imageIds?: readonly string[],
): Promise<void> {
  if (!document?.layer_cache || !outcome) return;
  try {
    const { refused } = await promoteStagedLayers(new LayerCache(ports.artifacts, ports.clock), ports.artifacts, document, outcome, RUNNER_VERSION, imageIds);
    for (const line of refused) console.warn(`layer cache: session '${document.session}': not recorded: ${line}`);
  } catch (error) {
    console.warn(`layer cache: session '${document.session}': recording failed: ${(error as Error).message}`);
  }
}
