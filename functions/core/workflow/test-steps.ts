import type { SessionRecord, SessionStep } from '../model/session.ts';
import type { ImageTests, TestProgress } from './run-document.ts';

/**
 * An image's test (issue 18) in `status.steps`: one `{name: 'test', image_id}` entry for the
 * image, one `{..., check}` per check and one `{..., boot}` for the boot test (naming the
 * accelerator it ran on). Sessions without validation get none of them.
 */

/** Which test entry a step is: the image's own, one of its checks, or its boot test. */
export type TestPart = { image_id: string } | { image_id: string; check: string } | { image_id: string; boot: true };

/** Whether `step` is the test entry `part` names. */
export function isTestEntry(step: SessionStep, part: TestPart): boolean {
  if (step.name !== 'test' || step.image_id !== part.image_id || step.layer !== undefined) return false;
  if ('check' in part) return step.check === part.check;
  if ('boot' in part) return step.boot !== undefined && step.check === undefined;
  return step.check === undefined && step.boot === undefined;
}

const ENDED = new Set<SessionStep['state']>(['succeeded', 'failed', 'skipped']);

interface Timed {
  state: SessionStep['state'];
  start_time?: string | undefined;
  end_time?: string | undefined;
  duration_ms?: number | undefined;
}

/** The entry with only the fields that are set, in a stable order (so equal entries compare equal as JSON). */
function entry(part: TestPart, timed: Timed, boot?: 'kvm' | 'tcg'): SessionStep {
  const next: SessionStep = { name: 'test', image_id: part.image_id, state: timed.state };
  if ('check' in part) next.check = part.check;
  if (boot) next.boot = boot;
  if (timed.start_time) next.start_time = timed.start_time;
  if (timed.end_time) next.end_time = timed.end_time;
  if (timed.duration_ms !== undefined) next.duration_ms = timed.duration_ms;
  return next;
}

/**
 * Puts `next` in place of the entry `part` names (or appends it), unless that entry has already
 * ended: a stale report never moves an ended entry back. Returns whether `steps` changed.
 */
function upsert(steps: SessionStep[], part: TestPart, next: SessionStep): boolean {
  const index = steps.findIndex((s) => isTestEntry(s, part));
  if (index === -1) {
    steps.push(next);
    return true;
  }
  const current = steps[index]!;
  if (ENDED.has(current.state) || JSON.stringify(current) === JSON.stringify(next)) return false;
  steps[index] = next;
  return true;
}

/** A progress state as a step state; `pending` has no entry. */
const started = (state: TestProgress['state']): state is SessionStep['state'] => state !== 'pending';

/**
 * Writes the runner's live test progress into `status.steps`, the way applyLayerProgress writes
 * layers: pending parts get no entry, an ended entry is never moved back. A boot test whose
 * accelerator the runner has not reported yet gets no entry until it has (the entry names it).
 * Returns the same record when nothing changed.
 */
export function applyTestProgress(record: SessionRecord, tests: TestProgress[]): SessionRecord {
  const steps = [...(record.status.steps ?? [])];
  let changed = false;
  for (const test of tests) {
    const image = { image_id: test.image_id };
    const children = [...test.checks.map((c) => c.state), ...(test.boot ? [test.boot.state] : [])];
    // A part that started means the image's test started, whatever its own entry says yet.
    const state = started(test.state) ? test.state : children.some(started) ? 'running' : undefined;
    if (!state) continue;
    changed = upsert(steps, image, entry(image, { ...test, state })) || changed;
    for (const check of test.checks) {
      if (!started(check.state)) continue;
      const part = { image_id: test.image_id, check: check.name };
      changed = upsert(steps, part, entry(part, { ...check, state: check.state })) || changed;
    }
    const boot = test.boot;
    if (boot && started(boot.state) && boot.accelerator) {
      const part = { image_id: test.image_id, boot: true as const };
      changed = upsert(steps, part, entry(part, { ...boot, state: boot.state }, boot.accelerator)) || changed;
    }
  }
  return changed ? { ...record, status: { ...record.status, steps } } : record;
}

/** The image's test as a whole: failed when a check or the boot failed, its span from the first start to the last end. */
function imageTestEntry(imageId: string, tests: ImageTests): SessionStep | undefined {
  const parts = [...tests.checks, ...(tests.boot ? [tests.boot] : [])];
  if (parts.length === 0) return undefined;
  const starts = parts.map((p) => p.start_time).sort();
  const ends = parts.map((p) => p.end_time).sort();
  const state = parts.some((p) => p.state === 'failed') ? 'failed' : 'succeeded';
  return entry({ image_id: imageId }, { state, start_time: starts[0], end_time: ends.at(-1) });
}

/**
 * Writes the final test entries from the runner's outcome (`images[i].tests`): every check and
 * the boot test with its state, times and duration, and the image's test entry (failed when one
 * of them failed). An entry that has already ended stays as it is; images without tests get
 * nothing. Returns the same record when nothing changed.
 */
export function applyTestOutcome(record: SessionRecord, images: Array<{ image_id: string; tests?: ImageTests | undefined }>): SessionRecord {
  const steps = [...(record.status.steps ?? [])];
  let changed = false;
  for (const image of images) {
    if (!image.tests) continue;
    const whole = imageTestEntry(image.image_id, image.tests);
    if (!whole) continue;
    changed = upsert(steps, { image_id: image.image_id }, whole) || changed;
    for (const check of image.tests.checks) {
      const part = { image_id: image.image_id, check: check.name };
      changed = upsert(steps, part, entry(part, check)) || changed;
    }
    const boot = image.tests.boot;
    if (boot) {
      const part = { image_id: image.image_id, boot: true as const };
      changed = upsert(steps, part, entry(part, boot, boot.accelerator)) || changed;
    }
  }
  return changed ? { ...record, status: { ...record.status, steps } } : record;
}
