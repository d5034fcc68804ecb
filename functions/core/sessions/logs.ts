import { NotFoundError } from '../errors.ts';
import type { SessionRecord } from '../model/session.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import type { SessionStore } from '../../ports/session-store.ts';
import { findRunnerLocations } from '../workflow/run-document-store.ts';
import { layerLogKey } from '../workflow/session-keys.ts';
import { fieldError } from './validation.ts';

/**
 * A session's Ansible logs, read while they grow: the runner copies each layer's log to the
 * store every second while the layer runs (and once at its end), so a client follows by
 * polling with a cursor (API Gateway ends any request at 29 s: no long-lived stream).
 */

/** The path of a session's logs under CSM's gateway paths: the v3 session's `logs` field. */
export function sessionLogsPath(name: string): string {
  return `/apis/cfs/v3/sessions/${encodeURIComponent(name)}/logs`;
}

/** Bytes per answer unless the caller asks for fewer (or more, up to the maximum). */
export const DEFAULT_LOG_CHUNK_BYTES = 64 * 1024;
export const MAX_LOG_CHUNK_BYTES = 1024 * 1024;

export type LayerLogState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';

/** `GET /v3/sessions/{name}/logs`: a chunk of text, where to continue, and whether more can come. */
export interface SessionLogChunk {
  session: string;
  /** Every layer of the session with its state and log key (a key with no object yet means no output yet). */
  layers: Array<{ index: number; name: string; state: LayerLogState; log_key: string }>;
  /** The layer asked for (`layer=N`); absent when following every layer in order. */
  layer?: number;
  /** New output since the cursor: whole lines while a layer runs, the rest once it has ended. */
  text: string;
  /** Pass back as `cursor` to get what follows. */
  cursor: string;
  /** True once nothing more will be appended to what this request covers (the session or the layer has ended and all of it was read). */
  complete: boolean;
}

export interface LogRequest {
  cursor?: string;
  layer?: string;
  max_bytes?: string;
}

interface Position {
  layer: number;
  offset: number;
}

function parseCursor(cursor: string | undefined, first: number): Position {
  if (cursor === undefined || cursor === '') return { layer: first, offset: 0 };
  const match = /^(\d{1,6}):(\d{1,15})$/.exec(cursor);
  if (!match) throw fieldError('cursor', `must be a cursor returned by this API (LAYER:OFFSET), not '${cursor}'`);
  return { layer: Number(match[1]), offset: Number(match[2]) };
}

function parseWhole(text: string | undefined, field: string, min: number, max: number): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw fieldError(field, `must be a whole number from ${min} to ${max}, not '${text}'`);
  return Number(text);
}

const ENDED = new Set<LayerLogState>(['succeeded', 'failed', 'skipped']);

/** Each layer's state from the session's status (`ansible` step entries per layer, kept by the workflow). */
export function layerStates(session: SessionRecord): LayerLogState[] {
  const complete = session.status.session.status === 'complete';
  return session.status.layers.map((layer) => {
    const step = (session.status.steps ?? []).find((s) => s.name === 'ansible' && s.layer === layer.name && s.image_id === undefined);
    if (step) return step.state === 'running' && complete ? 'failed' : step.state;
    return complete ? 'skipped' : 'pending';
  });
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

/**
 * Reads the session's logs from a cursor: every layer in order (moving on to the next layer
 * once one has ended and been read to its end), or only `layer`. A layer has ended when its
 * status step says so, when the session is complete, or when a later layer has a log (the
 * runner copies a layer's last bytes before it starts the next).
 */
export async function readSessionLogs(
  ports: { sessions: Pick<SessionStore, 'get'>; artifacts: Pick<ArtifactStore, 'get' | 'head'> },
  name: string,
  request: LogRequest = {},
): Promise<SessionLogChunk> {
  const session = await ports.sessions.get(name);
  if (!session) throw new NotFoundError('session', name);
  const count = session.status.layers.length;
  const only = parseWhole(request.layer, 'layer', 0, Math.max(0, count - 1));
  if (only !== undefined && count === 0) throw fieldError('layer', 'the session has no layers');
  const budget = parseWhole(request.max_bytes, 'max_bytes', 1, MAX_LOG_CHUNK_BYTES) ?? DEFAULT_LOG_CHUNK_BYTES;
  const first = only ?? 0;
  const last = only ?? count - 1;
  const position = parseCursor(request.cursor, first);
  if (position.layer < first || position.layer > Math.max(first, last)) throw fieldError('cursor', `points at layer ${position.layer}, outside the layers read here`);

  const states = layerStates(session);
  // The runner writes its logs under its own prefix, which the control-plane run document names.
  const prefix = (await findRunnerLocations(ports.artifacts, name)).logsPrefix;
  const keys = session.status.layers.map((layer, index) => layerLogKey(prefix, { index, name: layer.name }));
  const sizes = new Map<number, number | undefined>();
  const sizeOf = async (index: number) => {
    if (!sizes.has(index)) sizes.set(index, (await ports.artifacts.head(keys[index]!))?.size);
    return sizes.get(index);
  };
  const complete = session.status.session.status === 'complete';
  const ended = async (index: number) => complete || ENDED.has(states[index]!) || (index + 1 < count && (await sizeOf(index + 1)) !== undefined);

  const parts: Buffer[] = [];
  let left = budget;
  let done = false;
  while (count > 0) {
    const size = (await sizeOf(position.layer)) ?? 0;
    const layerEnded = await ended(position.layer);
    if (size > position.offset && left > 0) {
      const want = Math.min(size - position.offset, left);
      const bytes = await readRange(ports.artifacts, keys[position.layer]!, position.offset, position.offset + want);
      const atEnd = position.offset + bytes.length >= size;
      const usable = usableLength(bytes, layerEnded && atEnd, bytes.length === left);
      parts.push(bytes.subarray(0, usable));
      position.offset += usable;
      left -= usable;
      if (position.offset < size) break;
    }
    if (!layerEnded || position.offset < size) break;
    if (position.layer >= last) {
      done = true;
      break;
    }
    position.layer += 1;
    position.offset = 0;
  }
  if (count === 0) done = complete;

  return {
    session: name,
    layers: session.status.layers.map((layer, index) => ({ index, name: layer.name, state: states[index]!, log_key: keys[index]! })),
    ...(only !== undefined ? { layer: only } : {}),
    text: Buffer.concat(parts).toString('utf8'),
    cursor: `${position.layer}:${position.offset}`,
    complete: done && (only !== undefined || complete),
  };
}
