import { z } from 'zod';
import { awsRoot } from '../adapters/aws/index.ts';
import { waitForImages } from '../steps/wait-for-images.ts';
import { imageIdField, sessionField } from './shared/inputs.ts';
import { stepHandler } from './shared/step-handler.ts';

/** The `lambda:invoke.waitForTaskToken` Payload: `{session, missing, poll_seconds, token}`. */
const input = z.object({
  session: sessionField,
  missing: z.array(imageIdField),
  poll_seconds: z.number().int().positive(),
  token: z.string().min(1, 'must carry the task token'),
});

/**
 * WaitForImages: records the task token and returns at once; the state waits for the token
 * (a wake) or its TimeoutSecondsPath (the poll interval). The Lambda's own result is not what the state waits for.
 */
export const waitForImagesState = { state: 'WaitForImages', input, run: waitForImages };

export const handler = stepHandler({ ...waitForImagesState, ports: () => awsRoot().waitPorts() });
