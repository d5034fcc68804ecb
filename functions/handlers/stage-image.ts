import { awsRoot } from '../adapters/aws/index.ts';
import { stageImage } from '../steps/stage-image.ts';
import { imageInput } from './shared/inputs.ts';
import { stepHandler } from './shared/step-handler.ts';

/** StageImage (one iteration of the StageImages Map): pins one source image and its result. */
export const stageImageState = { state: 'StageImage', input: imageInput, run: stageImage };

export const handler = stepHandler({ ...stageImageState, ports: () => awsRoot().stepPorts() });
