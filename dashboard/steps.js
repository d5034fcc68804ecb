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

/** How old an entry made at `created` is, in words (`2 h`, `5 min`, `3 d`). */
function ageText(created, now) {
  const seconds = Math.max(0, Math.round((now - Date.parse(created)) / 1000));
  if (!Number.isFinite(seconds)) return 'of unknown age';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

/** Where a layer reused from the layer cache came from: `from session S, 2 h old`; empty for any other step. */
export function cachedFromText(step, now = Date.now()) {
  if (step.state !== 'cached' || !step.cached_from) return '';
  return `from session ${step.cached_from.session}, ${ageText(step.cached_from.created, now)} old`;
}

/** One package change of a changes report: `hello: installed 2.10-3`, `libc6: 2.36-9 → 2.36-9+deb12u4`, `foo: removed (was 1.0)`. */
export function packageChangeText(change) {
  if (change.old === null) return `${change.name}: installed ${change.new}`;
  if (change.new === null) return `${change.name}: removed (was ${change.old})`;
  return `${change.name}: ${change.old} → ${change.new}`;
}

/** A changes report in one line: `2 packages (dpkg), 4 files (2 added, 1 modified, 1 removed)`. */
export function changesSummaryText(report) {
  const count = (change) => report.files.filter((f) => f.change === change).length;
  const packages = report.packages ? `${report.packages.changes.length} package${report.packages.changes.length === 1 ? '' : 's'} (${report.packages.manager})` : 'no package database';
  const more = report.files_truncated ? '+' : '';
  return `${packages}, ${report.files.length}${more} file${report.files.length === 1 ? '' : 's'} (${count('added')} added, ${count('modified')} modified, ${count('removed')} removed)`;
}
