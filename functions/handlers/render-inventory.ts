import { STSClient } from '@aws-sdk/client-sts';
import { awsRoot } from '../adapters/aws/index.ts';
import { sourceAccessIssuerFrom } from '../adapters/aws/source-access.ts';
import { renderInventoryStep } from '../steps/render-inventory.ts';
import type { StepPorts } from '../steps/step-ports.ts';
import { sessionInput } from './shared/inputs.ts';
import { stepHandler } from './shared/step-handler.ts';

/** RenderInventory: writes the run document; `{document_key}` becomes the runner task's RUN_DOCUMENT_KEY. */
export const renderInventoryState = { state: 'RenderInventory', input: sessionInput, run: renderInventoryStep };

// Only this step gets the STS client (so the other step bundles leave it out): it issues a session's runner its sources' access.
let ports: StepPorts | undefined;
export const handler = stepHandler({
  ...renderInventoryState,
  ports: () => {
    if (ports) return ports;
    const sourceAccess = sourceAccessIssuerFrom(process.env, () => new STSClient({}));
    return (ports = { ...awsRoot().stepPorts(), ...(sourceAccess ? { sourceAccess } : {}) });
  },
});
