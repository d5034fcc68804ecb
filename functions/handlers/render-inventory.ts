import { awsRoot } from '../adapters/aws/index.ts';
import { renderInventoryStep } from '../steps/render-inventory.ts';
import { sessionInput } from './shared/inputs.ts';
import { stepHandler } from './shared/step-handler.ts';

/** RenderInventory: writes the run document; `{document_key}` becomes the runner task's RUN_DOCUMENT_KEY. */
export const renderInventoryState = { state: 'RenderInventory', input: sessionInput, run: renderInventoryStep };

export const handler = stepHandler({ ...renderInventoryState, ports: () => awsRoot().stepPorts() });
