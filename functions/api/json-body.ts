import type { Context } from 'hono';
import { HttpProblem } from './http-problem.ts';

/** Request bodies above this are refused with 413 before they are read whole. */
export const MAX_BODY_BYTES = 1024 * 1024;

async function readLimited(c: Context, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (declared > maxBytes) throw new HttpProblem(413, `request body is ${declared} bytes; the limit is ${maxBytes} bytes`, 'body');
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
      throw new HttpProblem(413, `request body exceeds the limit of ${maxBytes} bytes`, 'body');
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

/**
 * Reads a request body that must be one JSON object, at most `maxBytes` (streamed, so a huge
 * body is refused without being held). Empty, malformed, non-UTF-8 or non-object bodies are a
 * 400 and oversized ones a 413, each with a detail saying which.
 */
export async function readJsonObject(c: Context, maxBytes = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const bytes = await readLimited(c, maxBytes);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpProblem(400, 'request body is not valid UTF-8 text', 'body');
  }
  if (text.trim() === '') throw new HttpProblem(400, 'request body is empty; a JSON object is required', 'body');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new HttpProblem(400, `request body is not valid JSON: ${(error as Error).message}`, 'body');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw new HttpProblem(400, `request body must be a JSON object, not ${kind}`, 'body');
  }
  return value as Record<string, unknown>;
}
