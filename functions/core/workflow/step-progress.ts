import type { SessionRecord, SessionStep } from '../model/session.ts';

/** The workflow's user-visible steps, in order, as `status.steps[].name`. */
export type WorkflowStepName = 'validate' | 'stage' | 'inventory' | 'ansible' | 'package' | 'record';

interface StepSelector {
  name: WorkflowStepName;
  image_id?: string;
  /** One layer's run inside the `ansible` step (the step itself has none). */
  layer?: string;
}

function matches(step: SessionStep, selector: StepSelector): boolean {
  return step.name === selector.name && step.image_id === selector.image_id && step.layer === selector.layer;
}

/**
 * Marks a step (per image where `image_id` is given) as running, keeping the first start time
 * when a step is retried or run twice, so `status.steps` stays a faithful timeline.
 */
export function startStep(record: SessionRecord, selector: StepSelector, now: string): SessionRecord {
  const steps = [...(record.status.steps ?? [])];
  const index = steps.findIndex((s) => matches(s, selector));
  if (index >= 0) return record;
  const step: SessionStep = { name: selector.name, state: 'running', start_time: now };
  if (selector.image_id) step.image_id = selector.image_id;
  if (selector.layer !== undefined) step.layer = selector.layer;
  steps.push(step);
  return { ...record, status: { ...record.status, steps } };
}

/** Ends a step (starting it first if it never was), unless it has already ended. */
export function endStep(
  record: SessionRecord,
  selector: StepSelector,
  state: 'succeeded' | 'failed' | 'skipped',
  now: string,
  times: { start_time?: string; end_time?: string } = {},
): SessionRecord {
  const started = startStep(record, selector, times.start_time ?? now);
  const steps = (started.status.steps ?? []).map((s) =>
    matches(s, selector) && s.state === 'running'
      ? { ...s, state, end_time: times.end_time ?? now, ...(times.start_time ? { start_time: times.start_time } : {}) }
      : s,
  );
  return { ...started, status: { ...started.status, steps } };
}

/** The steps still running: on failure these are the ones that failed. */
export function runningSteps(record: SessionRecord): SessionStep[] {
  return (record.status.steps ?? []).filter((s) => s.state === 'running');
}

/** Ends every running step as failed (the failure path), returning the first one's name. */
export function failRunningSteps(record: SessionRecord, now: string): { record: SessionRecord; step?: SessionStep } {
  const step = runningSteps(record)[0];
  const steps = (record.status.steps ?? []).map((s) => (s.state === 'running' ? { ...s, state: 'failed' as const, end_time: now } : s));
  return { record: { ...record, status: { ...record.status, steps } }, step };
}
