import { awsRoot } from '../adapters/aws/index.ts';
import { packageAndUpload } from '../steps/package-and-upload.ts';
import { imageInput } from './shared/inputs.ts';
import { stepHandler } from './shared/step-handler.ts';

/** PackageImage (one iteration of the PackageAndUpload Map): verifies and registers one result. */
export const packageImageState = { state: 'PackageImage', input: imageInput, run: packageAndUpload };

export const handler = stepHandler({ ...packageImageState, ports: () => awsRoot().stepPorts() });
