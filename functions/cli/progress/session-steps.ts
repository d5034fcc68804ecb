/**
 * The step list a waiting client shows, computed from a v3 session as the API returns it:
 * validate, stage (per image), inventory, each layer, package (per image), record, each with
 * its state and times from `status.steps`. Pure, so both renderers (terminal and plain lines)
 * and the tests share it.
 */

export type RowState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

export interface StepRow {
  /** Stable identity of the row (`stage:<image>`, `layer:<index>`, ...). */
  key: string;
  label: string;
  state: RowState;
  start_time?: string;
  end_time?: string;
}

interface StepEntry {
  name: string;
  state: RowState;
  start_time?: string;
  end_time?: string;
  image_id?: string;
  layer?: string;
}

/** The parts of a v3 session the step list reads. */
export interface SessionView {
  name: string;
  target?: { groups?: Array<{ members?: string[] }> };
  status?: {
    session?: { status?: string; succeeded?: string };
    layers?: Array<{ name: string }>;
    steps?: StepEntry[];
    failure?: { step?: string; reason?: string; layer?: string; image_id?: string };
    message?: string;
  };
}

/** The source images of a session, in first-mention order. */
function images(session: SessionView): string[] {
  return [...new Set((session.target?.groups ?? []).flatMap((g) => g.members ?? []))];
}

function find(steps: StepEntry[], name: string, extra: { image_id?: string; layer?: string } = {}): StepEntry | undefined {
  return steps.find((s) => s.name === name && s.image_id === extra.image_id && s.layer === extra.layer);
}

/** The rows of a session's step list, in workflow order. */
export function sessionRows(session: SessionView): StepRow[] {
  const steps = session.status?.steps ?? [];
  const complete = session.status?.session?.status === 'complete';
  const row = (key: string, label: string, entry: StepEntry | undefined): StepRow => {
    // A step that never started in a finished session will not start any more.
    const state: RowState = entry?.state ?? (complete ? 'skipped' : 'pending');
    return { key, label, state, ...(entry?.start_time ? { start_time: entry.start_time } : {}), ...(entry?.end_time ? { end_time: entry.end_time } : {}) };
  };
  const ids = images(session);
  const rows: StepRow[] = [row('validate', 'validate images', find(steps, 'validate'))];
  for (const id of ids) rows.push(row(`stage:${id}`, `stage ${id}`, find(steps, 'stage', { image_id: id })));
  rows.push(row('inventory', 'render inventory', find(steps, 'inventory')));
  (session.status?.layers ?? []).forEach((layer, index) => {
    rows.push(row(`layer:${index}`, `layer ${index} ${layer.name}`, find(steps, 'ansible', { layer: layer.name })));
  });
  for (const id of ids) rows.push(row(`package:${id}`, `package ${id}`, find(steps, 'package', { image_id: id })));
  rows.push(row('record', 'record artifacts', find(steps, 'record')));
  return rows;
}

/** Seconds between two times (or from `start` to `now`), as `1.2s` / `3m04s`. */
export function elapsed(start: string | undefined, end: string | undefined, now: Date): string {
  if (!start) return '';
  const ms = (end ? Date.parse(end) : now.getTime()) - Date.parse(start);
  if (!Number.isFinite(ms) || ms < 0) return '';
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, '0')}s`;
}

/** The session's end in one line: `succeeded`, or `failed at <step> (layer, image): <reason>`. */
export function outcomeLine(session: SessionView): string {
  const state = session.status?.session;
  if (state?.succeeded === 'true') return `session ${session.name} succeeded`;
  const failure = session.status?.failure;
  if (!failure) return `session ${session.name} ended: succeeded=${state?.succeeded ?? 'unknown'}`;
  const where = [failure.layer && `layer ${failure.layer}`, failure.image_id && `image ${failure.image_id}`].filter(Boolean).join(', ');
  return `session ${session.name} failed at ${failure.step ?? 'an unknown step'}${where ? ` (${where})` : ''}: ${failure.reason ?? 'no reason recorded'}`;
}
