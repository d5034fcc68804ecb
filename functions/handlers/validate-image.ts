import { awsRoot } from '../adapters/aws/index.ts';
import { validateImages } from '../steps/validate-images.ts';
import { sessionInput } from './shared/inputs.ts';
import { stepHandler } from './shared/step-handler.ts';

/** ValidateImages: are all source images registered with a rootfs? (`{ready, images, missing, poll_seconds}`). */
export const validateImageState = { state: 'ValidateImages', input: sessionInput, run: validateImages };

export const handler = stepHandler({ ...validateImageState, ports: () => awsRoot().stepPorts() });
