import { ImageWaitTimeoutError, SessionCancelledError } from '../core/errors.ts';
import { advanceSession } from '../core/sessions/status.ts';
import { endStep, startStep } from '../core/workflow/step-progress.ts';
import type { SessionRecord } from '../core/model/session.ts';
import { readReadyManifest } from './image-manifest.ts';
import type { StepPorts } from './step-ports.ts';

export interface ValidateImagesOutput {
  ready: boolean;
  /** The unique source image IDs, in the order the target groups name them. */
  images: string[];
  missing: string[];
  /** How long WaitForImages parks before validating again. */
  poll_seconds: number;
}

/** The unique image IDs of a session's target groups, in first-mention order. */
export function sourceImageIds(session: SessionRecord): string[] {
  return [...new Set(session.target.groups.flatMap((g) => g.members))];
}

/** Loads a session the workflow is driving; a deleted or finished one ends the workflow. */
export async function loadActiveSession(ports: StepPorts, name: string): Promise<SessionRecord> {
  const session = await ports.sessions.get(name);
  if (!session) throw new SessionCancelledError(`session '${name}' was deleted`);
  if (session.status.session.status === 'complete') throw new SessionCancelledError(`session '${name}' has already completed`);
  return session;
}

const MAX_POLL_SECONDS = 24 * 3600;
const MAX_POLLS = 1000;

/**
 * validate-image: every source image must be registered with a rootfs. Missing ones keep the
 * session pending with a message naming them, until the image wait deadline (counted from the
 * session's start) passes.
 */
export async function validateImages(ports: StepPorts, input: { session: string }): Promise<ValidateImagesOutput> {
  const session = await loadActiveSession(ports, input.session);
  const images = sourceImageIds(session);
  const missing: string[] = [];
  for (const id of images) {
    if (!(await readReadyManifest(ports, id))) missing.push(id);
  }
  const now = ports.clock.now();
  const stamp = now.toISOString();
  const settings = await ports.settings();
  // It is the WaitForImages state's TimeoutSecondsPath: at most a day (a longer interval only
  // delays noticing a registration no event announced), and long enough that a whole wait takes
  // at most MAX_POLLS passes (each adds about 13 events to an execution's history, which Step
  // Functions caps at 25,000).
  const floor = Math.max(1, Math.ceil(settings.imageWaitTimeoutSeconds / MAX_POLLS));
  const poll_seconds = Math.min(MAX_POLL_SECONDS, Math.max(floor, Math.round(settings.imagePollIntervalSeconds)));

  // `session` was just read: the write below need not read it again (a stale one is re-read).
  if (missing.length === 0) {
    await ports.sessions.update(
      session.name,
      (s) => {
        const next = endStep(startStep(s, { name: 'validate' }, stamp), { name: 'validate' }, 'succeeded', stamp);
        return { ...next, status: { ...next.status, message: undefined } };
      },
      session,
    );
    return { ready: true, images, missing, poll_seconds };
  }

  const waitedSeconds = (now.getTime() - Date.parse(session.status.session.start_time)) / 1000;
  if (waitedSeconds >= settings.imageWaitTimeoutSeconds) {
    throw new ImageWaitTimeoutError(
      `image(s) ${missing.join(', ')} did not become ready (registered with a rootfs) within the image wait timeout of ${settings.imageWaitTimeoutSeconds}s`,
    );
  }
  const message = `waiting for image(s) to be registered with a rootfs: ${missing.join(', ')}`;
  // A re-check that finds the same images missing has nothing new to record.
  const recorded = session.status.message === message && session.status.steps?.some((s) => s.name === 'validate');
  if (!recorded) await ports.sessions.update(session.name, (s) => advanceSession(startStep(s, { name: 'validate' }, stamp), { message }), session);
  return { ready: false, images, missing, poll_seconds: Math.min(poll_seconds, Math.max(1, Math.ceil(settings.imageWaitTimeoutSeconds - waitedSeconds))) };
}
