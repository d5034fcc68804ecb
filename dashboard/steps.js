// What the session view says of its steps and test logs, as plain text (no DOM), so the unit
// tests can check it without a browser.

/** A step's label: its name, then its layer, its check or boot test, and its image (by name when known). */
export function stepLabel(step, names) {
  const parts = [step.name];
  if (step.layer) parts.push(`layer ${step.layer}`);
  if (step.check) parts.push(`check ${step.check}`);
  if (step.boot) parts.push(`boot (${step.boot})`);
  if (step.image_id) parts.push(names.get(step.image_id) ?? step.image_id.slice(0, 8));
  return parts.join(' · ');
}

/**
 * How long a step took, in ms: the runner's own measure for an ended check or boot test, else
 * from its start to its end (to `now` while it runs); NaN before it starts.
 */
export function stepDurationMs(step, now = Date.now()) {
  if (typeof step.duration_ms === 'number' && step.state !== 'running') return step.duration_ms;
  if (!step.start_time) return NaN;
  return (step.end_time ? Date.parse(step.end_time) : now) - Date.parse(step.start_time);
}

/** The heading of one test log of the logs API's `tests`: the check or the boot console, and the image. */
export function testLogTitle(test, names) {
  const image = names.get(test.image_id) ?? test.image_id;
  return test.check !== undefined ? `Check ${test.check} of ${image}` : `Boot console of ${image}`;
}
