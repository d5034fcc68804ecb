import type { SessionArtifact, SessionRecord } from '../core/model/session.ts';
import { DEFAULT_SESSION_TTL_SECONDS, expiresAt } from '../core/sessions/retention.ts';
import { advanceSession } from '../core/sessions/status.ts';
import { endStep, startStep } from '../core/workflow/step-progress.ts';
import { withRunnerLayers } from './layer-progress.ts';
import type { StepPorts } from './step-ports.ts';
import { loadActiveSession } from './validate-image.ts';

function succeedRunningLayers(record: SessionRecord, stamp: string): SessionRecord {
  const steps = record.status.steps?.map((step) => (step.layer !== undefined && step.state === 'running' ? { ...step, state: 'succeeded' as const, end_time: stamp } : step));
  return steps ? { ...record, status: { ...record.status, steps } } : record;
}

/**
 * record-artifact: writes `status.artifacts` (one per image), `complete` / `succeeded: "true"`
 * and the completion time, then announces `Session Completed`. Running it twice changes nothing.
 */
export async function recordArtifacts(
  ports: StepPorts,
  input: { session: string; results: { image_id: string; result_id: string }[] },
): Promise<void> {
  const current = await ports.sessions.get(input.session);
  // Run twice (a retried invocation after success): the first run already recorded everything.
  if (current?.status.session.status === 'complete' && current.status.session.succeeded === 'true') return;
  const session = await loadActiveSession(ports, input.session);
  const stamp = ports.clock.now().toISOString();
  const ttl = (await ports.settings()).sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS;
  const artifacts: SessionArtifact[] = input.results.map((r) => ({ image_id: r.image_id, result_id: r.result_id, type: 'ims_customized_image' }));
  const withLayers = await withRunnerLayers(ports, session.name);
  const updated = await ports.sessions.update(session.name, (s) => {
    // Every layer succeeded; one still shown running lost the runner's last (best-effort) progress write.
    const layered = succeedRunningLayers(withLayers(s), stamp);
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
  await ports.events.publish({
    source: 'cfs.sessions',
    detailType: 'Session Completed',
    detail: { name: updated.name, succeeded: updated.status.session.succeeded, artifacts: updated.status.artifacts },
  });
}
