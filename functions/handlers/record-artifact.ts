import { z } from 'zod';
import { awsRoot } from '../adapters/aws/index.ts';
import { recordArtifacts } from '../steps/record-artifacts.ts';
import type { StepPorts } from '../steps/step-ports.ts';
import { imageIdField, sessionField } from './shared/inputs.ts';
import { stepHandler } from './shared/step-handler.ts';

const input = z.object({
  session: sessionField,
  results: z.array(z.object({ image_id: imageIdField, result_id: z.string().min(1) })),
});

/** RecordArtifacts: the session's artifacts and `succeeded: "true"` (its result is discarded: ResultPath null). */
export const recordArtifactState = {
  state: 'RecordArtifacts',
  input,
  run: async (ports: StepPorts, parsed: z.infer<typeof input>) => {
    await recordArtifacts(ports, parsed);
    return {};
  },
};

export const handler = stepHandler({ ...recordArtifactState, ports: () => awsRoot().stepPorts() });
