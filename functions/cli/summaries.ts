import { table } from './output.ts';
import { cachedLabel } from '../core/workflow/layer-cache-status.ts';
import { elapsed, formatMs, resumeHint, type SessionView } from './progress/session-steps.ts';

/**
 * The human-readable default output of `cfs sessions` and `cfs configurations`: a summary of
 * the API's JSON (v3 or v2 shape), including this product's `status` extensions (steps,
 * failure, message) when present. Scripts should use `--format json`.
 */

// The API's JSON is read loosely here: only display depends on it.
type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const short = (commit: unknown) => (typeof commit === 'string' ? commit.slice(0, 12) : '-');
const or = (value: unknown, fallback = '-') => (value === undefined || value === null || value === '' ? fallback : String(value));

function sessionFields(s: Loose) {
  const session: Loose = s.status?.session ?? {};
  return {
    status: or(session.status),
    succeeded: or(session.succeeded),
    start: or(session.start_time ?? session.startTime),
    completion: or(session.completion_time ?? session.completionTime),
  };
}

/** A session's or automation's validation in one line: its checks and its boot test. */
export function validationLine(v: Loose): string {
  const checks: string[] = (v.checks ?? []).map((c: Loose) => c.name);
  const parts = [checks.length ? `checks ${checks.join(', ')}` : 'no checks', v.boot ? `boot until /${v.boot.success_pattern}/ (${v.boot.timeout_seconds}s)` : 'no boot test'];
  return parts.join('; ');
}

/** `cfs sessions describe` / `create`. */
export function sessionSummary(value: unknown): string {
  const s = value as Loose;
  const f = sessionFields(s);
  const status: Loose = s.status ?? {};
  const lines = [
    `Session ${s.name}: ${f.status}, succeeded ${f.succeeded}`,
    `  configuration  ${or(s.configuration?.name)}${s.configuration?.limit ? ` (limit: ${s.configuration.limit})` : ''}`,
    `  started        ${f.start}`,
    `  completed      ${f.completion}`,
  ];
  if (status.session?.job) lines.push(`  job            ${status.session.job}`);
  if (s.tags && Object.keys(s.tags).length) lines.push(`  tags           ${Object.entries(s.tags).map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (status.validation) lines.push(`  validation     ${validationLine(status.validation)}`);
  if (status.layer_cache === false) lines.push('  layer cache    off for this session: every layer runs (--no-cache)');
  lines.push(`  target         ${or(s.target?.definition)}`);
  for (const group of s.target?.groups ?? []) lines.push(`    ${group.name}: ${(group.members ?? []).join(', ')}`);
  for (const entry of s.target?.image_map ?? []) lines.push(`    ${entry.source_id} -> ${entry.result_name}`);
  if (status.layers?.length) {
    lines.push('  layers');
    for (const layer of status.layers) lines.push(`    ${layer.name}  ${layer.clone_url} @ ${short(layer.commit)}  ${layer.playbook}`);
  }
  if (status.steps?.length) {
    lines.push('  steps');
    for (const step of status.steps) {
      const where = [step.image_id && `image ${step.image_id}`, step.layer && `layer ${step.layer}`, step.check && `check ${step.check}`, step.boot && `boot on ${step.boot}`]
        .filter(Boolean)
        .join(', ');
      // A check's or boot test's own measure when the runner recorded one.
      const took = typeof step.duration_ms === 'number' ? formatMs(step.duration_ms) : step.end_time ? elapsed(step.start_time, step.end_time, new Date()) : '';
      const state = step.state === 'cached' ? cachedLabel(step.cached_from, new Date()) : step.state;
      lines.push(`    ${step.name}  ${state}  ${or(step.start_time, '')}${step.end_time ? ` -> ${step.end_time}` : ''}${where ? `  (${where})` : ''}${took ? `  took ${took}` : ''}`);
    }
  }
  if (status.failure) {
    const where = [status.failure.layer && `layer ${status.failure.layer}`, status.failure.image_id && `image ${status.failure.image_id}`].filter(Boolean).join(', ');
    lines.push(`  failure        ${status.failure.step}: ${status.failure.reason}${where ? ` (${where})` : ''}`);
    const hint = resumeHint(s as SessionView);
    if (hint) lines.push(`  resume         ${hint}`);
  }
  if (status.message) lines.push(`  message        ${status.message}`);
  if (status.debug) {
    const held = status.debug.released_at ? `released at ${status.debug.released_at}` : `held until ${status.debug.until} (cfs sessions debug ${s.name})`;
    lines.push(`  debug hold     ${status.debug.workspace}: ${held}`);
  }
  if (s.logs) lines.push(`  logs           ${s.logs} (cfs sessions logs ${s.name})`);
  if (status.artifacts?.length) {
    lines.push('  artifacts');
    for (const a of status.artifacts) lines.push(`    ${a.image_id} -> ${a.result_id} (${a.type})`);
  }
  return lines.join('\n');
}

/** `cfs sessions list`: v3 `{sessions}` or a v2 array. */
export function sessionListSummary(value: unknown): string {
  const sessions: Loose[] = Array.isArray(value) ? value : ((value as Loose).sessions ?? []);
  if (sessions.length === 0) return 'No sessions.';
  return table(
    ['NAME', 'STATUS', 'SUCCEEDED', 'STARTED', 'CONFIGURATION'],
    sessions.map((s) => {
      const f = sessionFields(s);
      return [String(s.name), f.status, f.succeeded, f.start, or(s.configuration?.name)];
    }),
  );
}

/** `cfs configurations describe` / `update`. */
export function configurationSummary(value: unknown): string {
  const c = value as Loose;
  const lines = [`Configuration ${c.name} (last updated ${or(c.last_updated ?? c.lastUpdated)})`];
  if (c.description) lines.push(`  description  ${c.description}`);
  const layers: Loose[] = c.layers ?? [];
  lines.push(layers.length ? '  layers' : '  no layers');
  layers.forEach((layer, i) => {
    const branch = layer.branch ? ` (branch ${layer.branch})` : '';
    lines.push(`    ${i}  ${or(layer.name, `layer${i}`)}  ${layer.clone_url ?? layer.cloneUrl}  ${layer.playbook}  ${short(layer.commit)}${branch}`);
  });
  const inventory = c.additional_inventory;
  if (inventory) lines.push(`  additional inventory  ${inventory.clone_url ?? inventory.cloneUrl} @ ${short(inventory.commit)}`);
  return lines.join('\n');
}

/** `cfs configurations list`: v3 `{configurations}` or a v2 array. */
export function configurationListSummary(value: unknown): string {
  const all: Loose[] = Array.isArray(value) ? value : ((value as Loose).configurations ?? []);
  if (all.length === 0) return 'No configurations.';
  return table(
    ['NAME', 'LAST UPDATED', 'LAYERS'],
    all.map((c) => [String(c.name), or(c.last_updated ?? c.lastUpdated), String((c.layers ?? []).length)]),
  );
}
