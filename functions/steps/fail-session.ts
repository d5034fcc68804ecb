import { NotFoundError } from '../core/errors.ts';
import { DEFAULT_IMAGE_BUCKET } from '../core/images/manifest.ts';
import type { SessionDebugHold, SessionFailure, SessionRecord } from '../core/model/session.ts';
import { isHeld } from '../core/sessions/debug-hold.ts';
import { DEFAULT_SESSION_TTL_SECONDS, expiresAt } from '../core/sessions/retention.ts';
import { advanceSession } from '../core/sessions/status.ts';
import { endStep, failRunningSteps } from '../core/workflow/step-progress.ts';
import { applyTestOutcome } from '../core/workflow/test-steps.ts';
import { applyLayerCacheOutcome } from '../core/workflow/layer-cache-status.ts';
import { findRunnerLocations, readRunDocument, removeRunnerObjects } from '../core/workflow/run-document-store.ts';
import { recordRunnerLayers } from './layer-cache-records.ts';
import { withRunnerLayers } from './layer-progress.ts';
import { publishCompletedResults } from './record-artifacts.ts';
import { readRunnerOutcome, type RunOutcome } from './runner-outcome.ts';
import { DEFAULT_WORKFLOW_SETTINGS, type StepPorts } from './step-ports.ts';

/** The `$.error` a Catch puts in the state: `{Error, Cause}`; Cause is JSON from Lambda, plain text locally. */
export interface CaughtError {
  Error?: string;
  Cause?: string;
}

const MAX_REASON = 400;

/** One line, bounded: status fields are read in terminals and tables. */
function oneLine(text: string): string {
  const line = text.split('\n').map((l) => l.trim()).find(Boolean) ?? text.trim();
  return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON - 1)}…` : line;
}

/**
 * A test failure's reason on one line, bounded: its whitespace (the console's last lines) folded
 * to spaces, and when too long its middle left out, so both what failed and the last output stay.
 */
function testReason(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  if (line.length <= MAX_REASON) return line;
  const head = 120;
  return `${line.slice(0, head)} … ${line.slice(line.length - (MAX_REASON - head - 3))}`;
}

/** The human reason inside a caught error. */
export function reasonOf(error: CaughtError | undefined): string {
  if (!error) return 'the workflow failed';
  let cause = error.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string; StoppedReason?: string };
    cause = parsed.errorMessage ?? parsed.StoppedReason ?? cause;
  } catch {
    // a plain-text cause (the embedded engine) is already the message
  }
  return oneLine(cause || error.Error || 'the workflow failed');
}

/**
 * Removes every trace of results: each result image registered, every object under its upload
 * prefix, and what a writer killed mid-write left there. Safe to run any number of times.
 */
export async function removeResults(ports: Pick<StepPorts, 'images' | 'artifacts'>, results: Array<{ result_id: string; upload_prefix: string }>): Promise<void> {
  for (const result of results) {
    await ports.images.delete(result.result_id);
    for (const key of await ports.artifacts.list(result.upload_prefix)) await ports.artifacts.delete(key);
    await ports.artifacts.discardIncomplete?.(result.upload_prefix);
  }
}

/** Removes what the session's runner uploaded under its prefix (`runner/<token>/results/`), never promoted. Safe to repeat. */
export async function removeRunnerResults(ports: Pick<StepPorts, 'artifacts'>, session: string): Promise<void> {
  const { prefix } = await findRunnerLocations(ports.artifacts, session);
  if (prefix) await removeRunnerObjects(ports.artifacts, `${prefix}results/`);
}

/**
 * Removes every trace of a session's results (its plan's, and the runner's unpromoted uploads),
 * unless the session succeeded: its results were shown and announced at its completion and are
 * the user's images from then on.
 */
export async function removeSessionResults(ports: Pick<StepPorts, 'images' | 'artifacts'>, session: SessionRecord): Promise<void> {
  if (session.status.session.status === 'complete' && session.status.session.succeeded === 'true') return;
  await removeResults(ports, session.status.plan ?? []);
  await removeRunnerResults(ports, session.name);
}

/**
 * Settles results left pending by a process that died mid-step (the embedded engine runs it after
 * its recovery): a result of a session that completed successfully is shown and announced (the
 * completion was the commit point), one of a failed or deleted session is removed with its
 * uploads, one of a session still pending or running is left to its workflow.
 */
export async function settlePendingResults(ports: StepPorts): Promise<void> {
  const pending = (await ports.images.list({ includePending: true })).filter((image) => image.pending_session !== undefined);
  for (const name of new Set(pending.map((image) => image.pending_session!))) {
    const session = await ports.sessions.get(name);
    if (session?.status.session.status === 'complete' && session.status.session.succeeded === 'true') {
      await publishCompletedResults(ports, session, false);
    } else if (!session || session.status.session.status === 'complete') {
      const own = pending.filter((image) => image.pending_session === name);
      await removeResults(ports, own.map((image) => ({ result_id: image.id, upload_prefix: `${DEFAULT_IMAGE_BUCKET}/${image.id}/` })));
    }
  }
}

/**
 * The failure path: records `complete` / `succeeded: "false"` with the failed step, the layer
 * and image when the runner names them, and a one-line reason; registers nothing and removes
 * staged uploads. A session deleted meanwhile needs nothing recorded. With `debug_on_failure`,
 * a workspace the runner kept is recorded as held (`status.debug`) for `debug_wait_time`, and
 * the session stays `running` / `none` (its failure recorded) until the hold ends.
 */
export async function failSession(
  ports: StepPorts,
  input: { session: string; error?: CaughtError; reason?: string },
): Promise<SessionFailure | undefined> {
  const session = await ports.sessions.get(input.session);
  if (!session) return undefined;
  // A completed session keeps its outcome: never undo a recorded success, never fail twice. A
  // success was committed, so what RecordArtifacts left undone after its write is finished here.
  if (session.status.session.status === 'complete') {
    await publishCompletedResults(ports, session, false);
    return session.status.failure;
  }
  // Failed already and held for debugging (still `running`): the hold's end completes it.
  if (isHeld(session)) return session.status.failure;
  await removeSessionResults(ports, session);

  const now = ports.clock.now();
  const stamp = now.toISOString();
  const settings = await ports.settings();
  const failed = failRunningSteps(session, stamp);
  let debug: SessionDebugHold | undefined;
  const failure: SessionFailure = { step: failed.step?.name ?? 'validate', reason: input.reason ?? reasonOf(input.error) };
  // What the runner recorded, when it got as far as recording: its images' tests are written into the steps too.
  let outcome: RunOutcome | undefined;
  if (failure.step === 'ansible' || input.error?.Error === 'States.TaskFailed') {
    failure.step = 'ansible';
    outcome = await readRunnerOutcome(ports, session.name);
    // The layers that succeeded are kept, so creating the session again resumes after them.
    await recordRunnerLayers(ports, await readRunDocument(ports.artifacts, session.name), outcome);
    // An explicit reason (a cancellation, a restart) says why better than what the runner saw.
    if (outcome?.status === 'failed') {
      if (outcome.reason && !input.reason) failure.reason = outcome.failed_step === 'test' ? testReason(outcome.reason) : oneLine(outcome.reason);
      // Every layer ran; an image failed its checks or its boot test.
      if (outcome.failed_step === 'test') failure.step = 'test';
      else if (outcome.failed_layer) failure.layer = outcome.failed_layer;
      if (outcome.failed_image) failure.image_id = outcome.failed_image;
      const waitSeconds = settings.debugWaitSeconds ?? DEFAULT_WORKFLOW_SETTINGS.debugWaitSeconds!;
      if (outcome.debug && session.debug_on_failure && waitSeconds > 0 && !input.reason) {
        debug = { until: new Date(now.getTime() + waitSeconds * 1000).toISOString(), ...outcome.debug };
      }
    } else if (!outcome && !input.reason) {
      failure.reason = `the runner ended without recording an outcome: ${failure.reason}`;
    }
  }
  if (failed.step?.image_id && !failure.image_id) failure.image_id = failed.step.image_id;

  const ttl = settings.sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS;
  const withLayers = await withRunnerLayers(ports, session.name);
  // The outcome's tests are final (they replace what the live progress left running); at a test
  // failure the layers all ran, so the Ansible step ended when the runner did, and only `test` failed.
  const withTests = (record: SessionRecord): SessionRecord => {
    if (!outcome) return record;
    const tested = applyTestOutcome(applyLayerCacheOutcome(record, outcome), outcome.images);
    return failure.step === 'test' ? endStep(tested, { name: 'ansible' }, 'succeeded', outcome.finished, { end_time: outcome.finished }) : tested;
  };
  let updated: SessionRecord;
  try {
    updated = await ports.sessions.update(session.name, (s) => {
      const marked = failRunningSteps(withTests(withLayers(s)), stamp).record;
      const failed = { ...marked, status: { ...marked.status, failure, message: undefined, ...(debug ? { debug } : {}) } };
      // Held (as CFS's job waits out the hold): `running`, `succeeded: none` until the hold ends (endHold).
      if (debug) return advanceSession(failed, { status: 'running' });
      const completed = advanceSession(failed, { status: 'complete', succeeded: 'false', completion_time: stamp });
      const expires = expiresAt(completed.status.session.completion_time ?? stamp, ttl);
      return expires === undefined ? completed : { ...completed, expires_at: expires };
    });
  } catch (error) {
    // Deleted while this ran (a DELETE of a running session): there is nothing left to record.
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
  // A held session completes (and is announced) when its hold ends.
  if (debug) return failure;
  await ports.events.publish({
    source: 'cfs.sessions',
    detailType: 'Session Completed',
    detail: { name: updated.name, succeeded: updated.status.session.succeeded, artifacts: updated.status.artifacts, failure },
  });
  return failure;
}
