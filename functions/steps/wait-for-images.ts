import { readReadyManifest } from './image-manifest.ts';
import type { StepPorts } from './step-ports.ts';

/** A session parked in WaitForImages: the task token that ends the wait, and what it waits for. */
export interface ImageWait {
  session: string;
  /** The Step Functions task token of the WaitForImages state. */
  token: string;
  missing: string[];
  recorded_at: string;
  /** Epoch seconds after which the item is garbage (the table's TTL attribute removes it). */
  expires_at: number;
}

/** Where waits are recorded (DynamoDB in AWS), so an `Image Registered` trigger can find them. */
export interface ImageWaitRecorder {
  put(wait: ImageWait): Promise<void>;
}

/** What the wait step touches: the registry (to look once more), the recorder, and a way to end a wait. */
export interface WaitForImagesPorts extends Pick<StepPorts, 'images' | 'artifacts' | 'clock'> {
  waits: ImageWaitRecorder;
  /** Sends the recorded token back (SendTaskSuccess), ending the wait at once; false when no wait was open. */
  wake(session: string): Promise<boolean>;
}

export interface WaitForImagesInput {
  session: string;
  missing: string[];
  poll_seconds: number;
  token: string;
}

/** A recorded wait outlives the longest wait state (a day: validate-image caps the poll) by far; the TTL only collects leftovers. */
const WAIT_RECORD_TTL_SECONDS = 3 * 24 * 3600;

/**
 * wait-for-images (AWS): records the session's task token so that the `Image Registered`
 * trigger (or anything else holding the session name) can end the wait at once through the
 * workflow starter's `wake`. The wait otherwise ends at the state's TimeoutSecondsPath (the poll interval), after which
 * the workflow validates again. An image registered between the validation and this record
 * announced itself before the token existed, so the step looks once more and wakes itself.
 */
export async function waitForImages(ports: WaitForImagesPorts, input: WaitForImagesInput): Promise<{ woken: boolean }> {
  const now = ports.clock.now();
  await ports.waits.put({
    session: input.session,
    token: input.token,
    missing: input.missing,
    recorded_at: now.toISOString(),
    expires_at: Math.floor(now.getTime() / 1000) + WAIT_RECORD_TTL_SECONDS,
  });
  if (await anyImageReady(ports, input.missing)) return { woken: await ports.wake(input.session) };
  return { woken: false };
}

/**
 * Whether any of the images is now registered with a rootfs: the look once more that a wait
 * takes after it starts listening (the AWS step above once its token is stored, the embedded
 * engine once its wait is subscribed), for an image registered after the validation whose
 * announcement came before anyone listened.
 */
export async function anyImageReady(ports: Pick<StepPorts, 'images' | 'artifacts'>, imageIds: string[]): Promise<boolean> {
  for (const id of imageIds) {
    if (await readReadyManifest(ports, id)) return true;
  }
  return false;
}
