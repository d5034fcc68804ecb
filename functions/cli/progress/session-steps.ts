/**
 * The step list a waiting client shows, computed from a v3 session as the API returns it:
 * validate, stage (per image), inventory, each layer, test (per image, with each check and the
 * boot test, for sessions with validation), package (per image), record, each with its state
 * and times from `status.steps`. Pure, so both renderers (terminal and plain lines) and the
 * tests share it.
 */

export type RowState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cached';

export interface StepRow {
  /** Stable identity of the row (`stage:<image>`, `layer:<index>`, ...). */
  key: string;
  label: string;
  state: RowState;
  start_time?: string;
  end_time?: string;
  /** How long it took as the runner measured it (a check, a boot test): shown instead of end minus start. */
  duration_ms?: number;
  /** A layer taken from the layer cache: the session that recorded it and when. */
  cached_from?: { session: string; created: string };
}

interface StepEntry {
  name: string;
  state: RowState;
  start_time?: string;
  end_time?: string;
  image_id?: string;
  layer?: string;
  /** In a `test` step: the check this entry is. */
  check?: string;
  /** In a `test` step: the boot test, naming its accelerator. */
  boot?: string;
  duration_ms?: number;
  cached_from?: { session: string; created: string };
}

/** The parts of a v3 session the step list reads. */
export interface SessionView {
  name: string;
  target?: { groups?: Array<{ members?: string[] }> };
  status?: {
    /** The session's validation when it has one: its checks and boot test are listed before they start. */
    validation?: { checks?: Array<{ name: string }>; boot?: unknown };
    session?: { status?: string; succeeded?: string };
    layers?: Array<{ name: string }>;
    steps?: StepEntry[];
    failure?: { step?: string; reason?: string; layer?: string; image_id?: string };
    /** A failed session's debug hold: the session stays `running` while it lasts. */
    debug?: { until: string; released_at?: string; images: Array<{ image_id: string }> };
    message?: string;
    /** false: the session asked for a full run (no layer reused). */
    layer_cache?: boolean;
    /** Each image's layer cache keys by layer index: present when the layer cache recorded the run. */
    layer_keys?: Record<string, string[]>;
  };
}

/** The source images of a session, in first-mention order. */
function images(session: SessionView): string[] {
  return [...new Set((session.target?.groups ?? []).flatMap((g) => g.members ?? []))];
}

function find(steps: StepEntry[], name: string, extra: { image_id?: string; layer?: string } = {}): StepEntry | undefined {
  return steps.find((s) => s.name === name && s.image_id === extra.image_id && s.layer === extra.layer && s.check === undefined && s.boot === undefined);
}

/**
 * The test rows' plan: the checks and whether there is a boot test, from the session's
 * validation when the API shows it, else from the `test` entries so far (every image runs the
 * same checks). Undefined for a session with neither: it gets no test rows.
 */
function testPlan(session: SessionView, steps: StepEntry[]): { checks: string[]; boot: boolean } | undefined {
  const entries = steps.filter((s) => s.name === 'test');
  const validation = session.status?.validation;
  if (!validation && entries.length === 0) return undefined;
  const checks = [...new Set([...(validation?.checks ?? []).map((c) => c.name), ...entries.flatMap((s) => (s.check !== undefined ? [s.check] : []))])];
  const boot = validation?.boot !== undefined || entries.some((s) => s.boot !== undefined);
  return { checks, boot };
}

/** The rows of a session's step list, in workflow order. */
export function sessionRows(session: SessionView): StepRow[] {
  const steps = session.status?.steps ?? [];
  // Held for debugging, the workflow has ended though the session is still `running`.
  const complete = session.status?.session?.status === 'complete' || session.status?.debug !== undefined;
  const row = (key: string, label: string, entry: StepEntry | undefined): StepRow => {
    // A step that never started in a finished session will not start any more.
    const state: RowState = entry?.state ?? (complete ? 'skipped' : 'pending');
    return {
      key,
      label,
      state,
      ...(entry?.start_time ? { start_time: entry.start_time } : {}),
      ...(entry?.end_time ? { end_time: entry.end_time } : {}),
      ...(entry?.duration_ms !== undefined ? { duration_ms: entry.duration_ms } : {}),
      ...(entry?.cached_from ? { cached_from: entry.cached_from } : {}),
    };
  };
  const ids = images(session);
  const rows: StepRow[] = [row('validate', 'validate images', find(steps, 'validate'))];
  for (const id of ids) rows.push(row(`stage:${id}`, `stage ${id}`, find(steps, 'stage', { image_id: id })));
  rows.push(row('inventory', 'render inventory', find(steps, 'inventory')));
  (session.status?.layers ?? []).forEach((layer, index) => {
    rows.push(row(`layer:${index}`, `layer ${index} ${layer.name}`, find(steps, 'ansible', { layer: layer.name })));
  });
  const plan = testPlan(session, steps);
  for (const id of plan ? ids : []) {
    const tests = steps.filter((s) => s.name === 'test' && s.image_id === id && s.layer === undefined);
    rows.push(row(`test:${id}`, `test ${id}`, find(steps, 'test', { image_id: id })));
    for (const check of plan!.checks) rows.push(row(`test:${id}:check:${check}`, `test ${id} check ${check}`, tests.find((s) => s.check === check)));
    if (plan!.boot) {
      const boot = tests.find((s) => s.boot !== undefined);
      rows.push(row(`test:${id}:boot`, `test ${id} boot${boot ? ` (${boot.boot})` : ''}`, boot));
    }
  }
  for (const id of ids) rows.push(row(`package:${id}`, `package ${id}`, find(steps, 'package', { image_id: id })));
  rows.push(row('record', 'record artifacts', find(steps, 'record')));
  return rows;
}

/** A span of milliseconds as `1.2s` / `3m04s` (empty when it is not one). */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(Math.floor(seconds % 60)).padStart(2, '0')}s`;
}

/** Seconds between two times (or from `start` to `now`), as `1.2s` / `3m04s`. */
export function elapsed(start: string | undefined, end: string | undefined, now: Date): string {
  if (!start) return '';
  return formatMs((end ? Date.parse(end) : now.getTime()) - Date.parse(start));
}

/** How long a row took: the runner's own measure when it recorded one, else its times (to `now` while it runs). */
export function rowTime(row: StepRow, now: Date): string {
  if (row.duration_ms !== undefined && row.state !== 'running') return formatMs(row.duration_ms);
  return elapsed(row.start_time, row.end_time, now);
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

/**
 * What a failed session's user can do next (issue 19): when a layer k > 0 failed and the layer
 * cache recorded the run, creating the session again with the same configuration reuses layers
 * 0..k-1 from the cache, so only layer k on runs again. Undefined otherwise.
 */
export function resumeHint(session: SessionView): string | undefined {
  const status = session.status;
  const failed = status?.failure?.layer;
  if (status?.session?.succeeded !== 'false' || failed === undefined) return undefined;
  const index = (status.layers ?? []).findIndex((l) => l.name === failed);
  const recorded = Object.values(status.layer_keys ?? {}).some((keys) => keys.length > 0);
  if (index <= 0 || !recorded) return undefined;
  const reused = index === 1 ? 'layer 0 is' : `layers 0..${index - 1} are`;
  return (
    `to resume, create the session again with the same configuration (a new name, or the same after 'cfs sessions delete ${session.name}'): ` +
    `${reused} reused from the layer cache (entries up to the setting layer_cache_max_age_seconds old) and the run starts at layer ${index} (${failed})`
  );
}
