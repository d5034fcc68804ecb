import { awsRoot } from '../adapters/aws/index.ts';
import { cleanup } from '../steps/cleanup.ts';
import type { StepPorts } from '../steps/step-ports.ts';
import { sessionInput } from './shared/inputs.ts';
import { stepHandler } from './shared/step-handler.ts';

/**
 * Cleanup: removes the run document. On AWS there is no workspace to remove: the runner's disk
 * is its ECS task's ephemeral storage, gone with the task.
 */
export const cleanupState = {
  state: 'Cleanup',
  input: sessionInput,
  run: async (ports: Pick<StepPorts, 'artifacts'>, parsed: { session: string }) => {
    await cleanup({ artifacts: ports.artifacts }, parsed);
    return {};
  },
};

export const handler = stepHandler({ ...cleanupState, ports: () => awsRoot().stepPorts() });
