import { NotFoundError } from '../errors.ts';
import type { SessionRecord, SessionStep } from '../model/session.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import type { SessionStore } from '../../ports/session-store.ts';
import type { RunDocument } from '../workflow/run-document.ts';
import { readRunDocument, runnerLocations } from '../workflow/run-document-store.ts';
import { layerLogKey, testLogKey } from '../workflow/session-keys.ts';
import { isTestEntry, type TestPart } from '../workflow/test-steps.ts';
import { workflowEnded } from './debug-hold.ts';
import { fieldError } from './validation.ts';

/**
 * A session's logs, read while they grow: each Ansible layer's, then (with validation) each
 * image's test logs (its checks' output, its boot test's serial console). The runner copies a
 * log to the store every second while it grows (and once at its end), so a client follows by
 * polling with a cursor (API Gateway ends any request at 29 s: no long-lived stream).
 */

/** The path of a session's logs under CSM's gateway paths: the v3 session's `logs` field. */
export function sessionLogsPath(name: string): string {
  return `/apis/cfs/v3/sessions/${encodeURIComponent(name)}/logs`;
}

/** Bytes per answer unless the caller asks for fewer (or more, up to the maximum). */
export const DEFAULT_LOG_CHUNK_BYTES = 64 * 1024;
export const MAX_LOG_CHUNK_BYTES = 1024 * 1024;

export type LayerLogState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cached';

/** One test log of a session: an image's check or its boot test's console. */
export interface TestLog {
  /** What `test=` takes to read this log alone: `<image_id>/check-<name>` or `<image_id>/boot-console`. */
  test: string;
  image_id: string;
  /** The check whose output this is; absent for the boot test. */
  check?: string;
  /** True for the boot test's serial console. */
  boot?: boolean;
  state: LayerLogState;
  log_key: string;
}

/** `GET /v3/sessions/{name}/logs`: a chunk of text, where to continue, and whether more can come. */
export interface SessionLogChunk {
  session: string;
  /** Every layer of the session with its state and log key (a key with no object yet means no output yet). */
  layers: Array<{ index: number; name: string; state: LayerLogState; log_key: string }>;
  /** Every test log of the session (with validation; empty without), in the order they are followed: each image's checks, then its boot. */
  tests: TestLog[];
  /** The layer asked for (`layer=N`); absent when following every log in order. */
  layer?: number;
  /** The test log asked for (`test=<image_id>/check-<name>`); absent when following every log in order. */
  test?: string;
  /** New output since the cursor: whole lines while a log grows, the rest once it has ended. */
  text: string;
  /** Pass back as `cursor` to get what follows. */
  cursor: string;
  /** True once nothing more will be appended to what this request covers (the session, the layer or the test has ended and all of it was read). */
  complete: boolean;
}

export interface LogRequest {
  cursor?: string;
  layer?: string;
  test?: string;
  max_bytes?: string;
}

/** A place in the session's logs: `part` counts the layers first, then the test logs. */
interface Position {
  part: number;
  offset: number;
}

/** A cursor as written: in a layer's log or in a test log, at an offset. */
interface Cursor {
  test: boolean;
  index: number;
  offset: number;
}

/**
 * Cursors are `LAYER:OFFSET` in a layer's log (as before test logs existed, so a layer-only
 * session's cursors are unchanged) and `tINDEX:OFFSET` in the INDEXth test log.
 */
function parseCursor(cursor: string | undefined): Cursor | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const match = /^(t?)(\d{1,6}):(\d{1,15})$/.exec(cursor);
  if (!match) throw fieldError('cursor', `must be a cursor returned by this API (LAYER:OFFSET or tTEST:OFFSET), not '${cursor}'`);
  return { test: match[1] === 't', index: Number(match[2]), offset: Number(match[3]) };
}

function formatCursor(position: Position, layers: number): string {
  return position.part < layers ? `${position.part}:${position.offset}` : `t${position.part - layers}:${position.offset}`;
}

function parseWhole(text: string | undefined, field: string, min: number, max: number): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw fieldError(field, `must be a whole number from ${min} to ${max}, not '${text}'`);
  return Number(text);
}

// A layer reused from the layer cache has ended before the run's first layer starts.
const ENDED = new Set<LayerLogState>(['succeeded', 'failed', 'skipped', 'cached']);

/** A log's state from the step entry that tracks it (a running entry in a completed session failed with it; no entry: pending, or skipped once complete). */
function stateOf(session: SessionRecord, step: SessionStep | undefined): LayerLogState {
  const complete = workflowEnded(session);
  if (step) return step.state === 'running' && complete ? 'failed' : step.state;
  return complete ? 'skipped' : 'pending';
}

/** Each layer's state from the session's status (`ansible` step entries per layer, kept by the workflow). */
export function layerStates(session: SessionRecord): LayerLogState[] {
  return session.status.layers.map((layer) =>
    stateOf(session, (session.status.steps ?? []).find((s) => s.name === 'ansible' && s.layer === layer.name && s.image_id === undefined)),
  );
}

/**
 * The session's test logs as its run document plans them (its images in order; for each, its
 * checks in order, then its boot test), with each one's state from its `test` step entry.
 */
export function testLogs(session: SessionRecord, document: RunDocument | undefined): TestLog[] {
  const validation = document?.validation;
  if (!document || !validation) return [];
  const logs: TestLog[] = [];
  for (const image of document.images) {
    const parts: Array<{ part: TestPart; test: string; key: string }> = [
      ...validation.checks.map((check) => ({
        part: { image_id: image.image_id, check: check.name },
        test: `${image.image_id}/check-${check.name}`,
        key: testLogKey(document.logs_prefix, image.image_id, { check: check.name }),
      })),
      ...(validation.boot
        ? [{ part: { image_id: image.image_id, boot: true as const }, test: `${image.image_id}/boot-console`, key: testLogKey(document.logs_prefix, image.image_id, 'boot') }]
        : []),
    ];
    for (const { part, test, key } of parts) {
      const state = stateOf(session, (session.status.steps ?? []).find((s) => isTestEntry(s, part)));
      logs.push({ test, image_id: image.image_id, ...('check' in part ? { check: part.check } : { boot: true }), state, log_key: key });
    }
  }
  return logs;
}

/** `[start, end)` of a stored object, read without holding more than that range. */
async function readRange(store: Pick<ArtifactStore, 'get'>, key: string, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let position = 0;
  const stream = await store.get(key);
  try {
    for await (const chunk of stream) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      const from = Math.max(0, start - position);
      const to = Math.min(buffer.length, end - position);
      if (to > from) parts.push(buffer.subarray(from, to));
      position += buffer.length;
      if (position >= end) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(parts);
}

/**
 * How much of `bytes` to hand out: everything once the layer has ended; while it runs, whole
 * lines only (a line or a UTF-8 character is never cut in two), unless one line fills the
 * whole chunk, which is then cut at a character boundary.
 */
export function usableLength(bytes: Buffer, ended: boolean, full: boolean): number {
  if (ended) return bytes.length;
  const newline = bytes.lastIndexOf(0x0a);
  if (newline >= 0) return newline + 1;
  if (!full) return 0;
  let end = bytes.length;
  // Step back over continuation bytes (10xxxxxx) to the start of the last character.
  while (end > 0 && (bytes[end - 1]! & 0xc0) === 0x80) end--;
  if (end > 0 && bytes[end - 1]! >= 0xc0) end--;
  return end === 0 ? bytes.length : end;
}

/** The test log `test=` names, by its place in `tests`; a 400 naming `test` when it names none. */
function testIndex(tests: TestLog[], test: string): number {
  if (tests.length === 0) throw fieldError('test', 'the session has no test logs (it asked for no checks and no boot test, or has not been planned yet)');
  const index = tests.findIndex((t) => t.test === test);
  if (index === -1) throw fieldError('test', `must name one of the session's test logs (IMAGE_ID/check-NAME or IMAGE_ID/boot-console), not '${test}'`);
  return index;
}

/**
 * Reads the session's logs from a cursor: every layer in order and then every test log in order
 * (moving on once a log has ended and been read to its end), or only `layer`, or only `test`. A
 * log has ended when its status step says so, when the session's workflow ended (complete, or
 * failed and held for debugging), or when a log the
 * runner writes after it exists: the next layer's for a layer (any test log for the last one),
 * a later test log of the same image for a test (the runner copies a log's last bytes before it
 * starts the next).
 */
export async function readSessionLogs(
  ports: { sessions: Pick<SessionStore, 'get'>; artifacts: Pick<ArtifactStore, 'get' | 'head'> },
  name: string,
  request: LogRequest = {},
): Promise<SessionLogChunk> {
  const session = await ports.sessions.get(name);
  if (!session) throw new NotFoundError('session', name);
  const count = session.status.layers.length;
  if (request.layer && request.test) throw fieldError('test', 'give either layer or test, not both');
  const onlyLayer = parseWhole(request.layer, 'layer', 0, Math.max(0, count - 1));
  if (onlyLayer !== undefined && count === 0) throw fieldError('layer', 'the session has no layers');
  const budget = parseWhole(request.max_bytes, 'max_bytes', 1, MAX_LOG_CHUNK_BYTES) ?? DEFAULT_LOG_CHUNK_BYTES;
  const cursor = parseCursor(request.cursor);
  // The runner writes its logs under its own prefix, which the control-plane run document names
  // (with the tests it plans). A document of an earlier session of this name (deleted, its
  // clean-up not done yet) names another job: its logs are not this session's.
  const written = await readRunDocument(ports.artifacts, name);
  const job = session.status.session.job;
  const document = written && (written.job === undefined || job === undefined || written.job === job) ? written : undefined;
  const prefix = runnerLocations(name, document).logsPrefix;
  const tests = testLogs(session, document);
  const onlyTest = request.test ? count + testIndex(tests, request.test) : undefined;
  const only = onlyLayer ?? onlyTest;
  const total = count + tests.length;
  const first = only ?? 0;
  const last = only ?? total - 1;
  const position: Position = cursor ? { part: cursor.index + (cursor.test ? count : 0), offset: cursor.offset } : { part: first, offset: 0 };
  if (position.part < first || position.part > Math.max(first, last)) throw fieldError('cursor', `points at ${position.part < count ? `layer ${position.part}` : `test log ${position.part - count}`}, outside the logs read here`);

  const states = [...layerStates(session), ...tests.map((t) => t.state)];
  const keys = [...session.status.layers.map((layer, index) => layerLogKey(prefix, { index, name: layer.name })), ...tests.map((t) => t.log_key)];
  // The logs the runner writes after each one: their existence means it has ended.
  const later = (part: number): number[] => {
    if (part < count - 1) return [part + 1];
    if (part === count - 1) return tests.map((_, j) => count + j);
    const image = tests[part - count]!.image_id;
    return tests.flatMap((t, j) => (count + j > part && t.image_id === image ? [count + j] : []));
  };
  const sizes = new Map<number, number | undefined>();
  const sizeOf = async (part: number) => {
    if (!sizes.has(part)) sizes.set(part, (await ports.artifacts.head(keys[part]!))?.size);
    return sizes.get(part);
  };
  const complete = workflowEnded(session);
  const ended = async (part: number) => {
    if (complete || ENDED.has(states[part]!)) return true;
    for (const next of later(part)) if ((await sizeOf(next)) !== undefined) return true;
    return false;
  };

  const parts: Buffer[] = [];
  let left = budget;
  let done = false;
  while (total > 0) {
    const size = (await sizeOf(position.part)) ?? 0;
    const partEnded = await ended(position.part);
    if (size > position.offset && left > 0) {
      const want = Math.min(size - position.offset, left);
      const bytes = await readRange(ports.artifacts, keys[position.part]!, position.offset, position.offset + want);
      const atEnd = position.offset + bytes.length >= size;
      const usable = usableLength(bytes, partEnded && atEnd, bytes.length === left);
      parts.push(bytes.subarray(0, usable));
      position.offset += usable;
      left -= usable;
      if (position.offset < size) break;
    }
    if (!partEnded || position.offset < size) break;
    if (position.part >= last) {
      done = true;
      break;
    }
    position.part += 1;
    position.offset = 0;
  }
  if (total === 0) done = complete;

  return {
    session: name,
    layers: session.status.layers.map((layer, index) => ({ index, name: layer.name, state: states[index]!, log_key: keys[index]! })),
    tests,
    ...(onlyLayer !== undefined ? { layer: onlyLayer } : {}),
    ...(onlyTest !== undefined ? { test: request.test! } : {}),
    text: Buffer.concat(parts).toString('utf8'),
    cursor: formatCursor(position, count),
    complete: done && (only !== undefined || complete),
  };
}
