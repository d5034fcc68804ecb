import type { Context } from 'hono';
import { HttpProblem } from './http-problem.ts';

/** Request bodies above this are refused with 413 before they are read whole. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The 413 for a body past its limit. It closes the connection, so the rest of the body is not
 * read off the socket at all (keeping it alive would mean draining it first).
 */
export function bodyTooLarge(detail: string): HttpProblem {
  return new HttpProblem(413, detail, 'body', { Connection: 'close' });
}

async function readLimited(c: Context, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (declared > maxBytes) throw bodyTooLarge(`request body is ${declared} bytes; the limit is ${maxBytes} bytes`);
  const stream = c.req.raw.body;
  if (!stream) return new Uint8Array();
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw bodyTooLarge(`request body exceeds the limit of ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** How a body is read: the byte limit, and whether an empty body is allowed (then read as `undefined`). */
export interface JsonBodyOptions {
  maxBytes?: number;
  optional?: boolean;
  /** The detail of the 400 for an empty body that is not optional. */
  emptyDetail?: string;
}

/**
 * Reads a request body of one JSON value, at most `maxBytes`, counted while it streams (chunked
 * or not), so a huge body is refused with a 413 as soon as it passes the limit and is never held
 * whole. Empty (unless optional), malformed or non-UTF-8 bodies are a 400 naming `body`.
 */
export async function readJsonBody(c: Context, options: JsonBodyOptions = {}): Promise<unknown> {
  const bytes = await readLimited(c, options.maxBytes ?? MAX_BODY_BYTES);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpProblem(400, 'request body is not valid UTF-8 text', 'body');
  }
  if (text.trim() === '') {
    if (options.optional) return undefined;
    throw new HttpProblem(400, options.emptyDetail ?? 'request body is empty; a JSON object is required', 'body');
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpProblem(400, `request body is not valid JSON: ${(error as Error).message}`, 'body');
  }
}

/**
 * Reads a request body that must be one JSON object, at most `maxBytes` (see readJsonBody).
 * Non-object bodies are a 400 saying what was sent instead.
 */
export async function readJsonObject(c: Context, maxBytes = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const value = await readJsonBody(c, { maxBytes });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new HttpProblem(400, `request body must be a JSON object, not ${kind}`, 'body');
  }
  return value as Record<string, unknown>;
}
