import { IntegrityError } from '../core/errors.ts';
import { revealResultImages } from '../core/images/result-images.ts';
import { pinResultLayers } from '../core/layer-cache/retention.ts';
import type { SessionArtifact, SessionRecord } from '../core/model/session.ts';
import { DEFAULT_SESSION_TTL_SECONDS, expiresAt } from '../core/sessions/retention.ts';
import { advanceSession } from '../core/sessions/status.ts';
import { endStep, startStep } from '../core/workflow/step-progress.ts';
import { applyLayerCacheOutcome, LAYER_KEYS_METADATA_KEY, layerKeysInOrder } from '../core/workflow/layer-cache-status.ts';
import { withRunnerLayers } from './layer-progress.ts';
import { readRunnerOutcome, type RunOutcome } from './runner-outcome.ts';
import type { StepPorts } from './step-ports.ts';
import { loadActiveSession } from './validate-images.ts';

function succeedRunningLayers(record: SessionRecord, stamp: string): SessionRecord {
  const steps = record.status.steps?.map((step) => (step.layer !== undefined && step.state === 'running' ? { ...step, state: 'succeeded' as const, end_time: stamp } : step));
  return steps ? { ...record, status: { ...record.status, steps } } : record;
}

/**
 * Each result's layer keys (in layer order, joined by `,`) in its image's metadata, before the
 * commit: the result's lineage points to its layers' changes reports by key, not by session
 * (sessions expire). Written again on a retry, to the same value.
 */
async function recordLayerKeys(ports: StepPorts, outcome: RunOutcome, results: Array<{ image_id: string; result_id: string }>): Promise<void> {
  for (const result of results) {
    const keys = layerKeysInOrder(outcome.images.find((i) => i.image_id === result.image_id) ?? {});
    if (keys.length === 0) continue;
    const value = keys.join(',');
    await ports.images.update(result.result_id, (image) =>
      image.metadata?.[LAYER_KEYS_METADATA_KEY] === value ? image : { ...image, metadata: { ...image.metadata, [LAYER_KEYS_METADATA_KEY]: value } },
    );
  }
}

const succeeded = (session: SessionRecord | undefined): session is SessionRecord =>
  session?.status.session.status === 'complete' && session.status.session.succeeded === 'true';

/**
 * The part of completing a session that comes after its commit point (the completion write):
 * every result is shown and announced (`Image Registered`), then `Session Completed` is
 * published. Only rolls forward, so RecordArtifacts' retries, FailSession (on a session that
 * committed) and the embedded engine's recovery all call it; `Session Completed` goes out when
 * this call committed or still had results to announce.
 */
export async function publishCompletedResults(ports: StepPorts, session: SessionRecord, committed: boolean): Promise<void> {
  if (!succeeded(session)) return;
  // Before a result shows: the cache entries it was built from stay while it lives (its lineage).
  await pinResultLayers(ports, session.status.artifacts.map((a) => a.result_id));
  const announced = await revealResultImages(ports, session.name, session.status.artifacts.map((a) => a.result_id));
  if (!committed && announced.length === 0) return;
  await ports.events.publish({
    source: 'cfs.sessions',
    detailType: 'Session Completed',
    detail: { name: session.name, succeeded: session.status.session.succeeded, artifacts: session.status.artifacts },
  });
}

/**
 * record-artifact: the session's commit point. Checks that every image of the session has its
 * verified result prepared (PackageAndUpload), then writes `status.artifacts` (one per image),
 * `complete` / `succeeded: "true"` and the completion time in one write; only then are the
 * results shown and announced, and `Session Completed` published. Until that write no result is
 * listed, announced or usable as a source; a session that fails before it never showed one.
 * Running it twice changes nothing (a retry after the write finishes showing the results).
 */
export async function recordArtifacts(
  ports: StepPorts,
  input: { session: string; results: { image_id: string; result_id: string }[] },
): Promise<void> {
  const current = await ports.sessions.get(input.session);
  // Run twice (a retried invocation after the commit): the results may still need showing.
  if (succeeded(current)) return publishCompletedResults(ports, current, false);
  const session = await loadActiveSession(ports, input.session);
  const expected = new Map((session.status.plan ?? []).map((p) => [p.result_id, p.image_id]));
  for (const r of input.results) expected.set(r.result_id, r.image_id);
  for (const [resultId, imageId] of expected) {
    const prepared = await ports.images.get(resultId, { includePending: true });
    if (prepared?.pending_session !== session.name && prepared?.metadata?.cfs_session !== session.name) {
      throw new IntegrityError(`the result ${resultId} of image ${imageId} was not verified and prepared; no result of session '${session.name}' is shown`);
    }
  }

  const stamp = ports.clock.now().toISOString();
  const ttl = (await ports.settings()).sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS;
  const artifacts: SessionArtifact[] = input.results.map((r) => ({ image_id: r.image_id, result_id: r.result_id, type: 'ims_customized_image' }));
  const withLayers = await withRunnerLayers(ports, session.name);
  const outcome = await readRunnerOutcome(ports, session.name);
  if (outcome) await recordLayerKeys(ports, outcome, input.results);
  const updated = await ports.sessions.update(session.name, (s) => {
    // Every layer succeeded; one still shown running lost the runner's last (best-effort) progress write.
    const layered = succeedRunningLayers(outcome ? applyLayerCacheOutcome(withLayers(s), outcome) : withLayers(s), stamp);
    const recorded = endStep(startStep(layered, { name: 'record' }, stamp), { name: 'record' }, 'succeeded', stamp);
    const known = new Set(recorded.status.artifacts.map((a) => a.result_id));
    const merged = [...recorded.status.artifacts, ...artifacts.filter((a) => !known.has(a.result_id))];
    const completed = advanceSession(
      { ...recorded, status: { ...recorded.status, artifacts: merged, message: undefined } },
      { status: 'complete', succeeded: 'true', completion_time: stamp },
    );
    // The table's TTL attribute: DynamoDB removes the record in AWS; the embedded sweep applies the option as it stands.
    const expires = expiresAt(completed.status.session.completion_time ?? stamp, ttl);
    return expires === undefined ? completed : { ...completed, expires_at: expires };
  });
  await publishCompletedResults(ports, updated, true);
}
