import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Size and checksums measured while the bytes streamed. */
export interface Measured {
  size: number;
  md5: string;
  sha256: string;
}

/** A transfer that failed: one line naming what and why. */
export class TransferError extends Error {
  override readonly name = 'TransferError' as const;
}

/** A pass-through that hashes md5 and sha256 and counts bytes as they go by. */
function measuring(): { stream: Transform; result: () => Measured } {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, done) {
      md5.update(chunk);
      sha256.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, result: () => ({ size, md5: md5.digest('hex'), sha256: sha256.digest('hex') }) };
}

export function requestFor(url: URL) {
  if (url.protocol === 'https:') return httpsRequest;
  if (url.protocol === 'http:') return httpRequest;
  throw new TransferError(`unsupported URL scheme ${url.protocol}`);
}

/** The useful sentence of an error body: problem+json `detail`, S3's XML `<Message>`, or the status. */
export async function reasonOf(response: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of response) {
    if (body.length < 8192) body += (chunk as Buffer).toString();
  }
  try {
    const problem = JSON.parse(body) as { title?: string; detail?: string };
    if (problem.detail) return problem.title ? `${problem.title}: ${problem.detail}` : problem.detail;
  } catch {
    const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
    if (message) return message;
  }
  return `HTTP ${response.statusCode} ${response.statusMessage ?? ''}`.trim();
}

/**
 * PUTs a file to an upload URL (presigned S3, or the embedded server's signed endpoint) as one
 * stream with a Content-Length (S3 refuses chunked uploads), measuring size, md5 and sha256 in
 * the same pass. Uses node:http rather than fetch, which reads ahead without bound.
 */
export async function uploadFile(url: string, file: string, signal?: AbortSignal): Promise<Measured> {
  const target = new URL(url);
  const { size } = await stat(file);
  const measure = measuring();
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = requestFor(target)(target, {
      method: 'PUT',
      signal,
      headers: { 'Content-Length': String(size), 'Content-Type': 'application/octet-stream' },
    });
    req.on('response', resolve);
    req.on('error', reject);
    pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), measure.stream, req).catch(reject);
  }).catch((error: Error) => {
    throw new TransferError(`upload of ${file} failed: ${error.message}`);
  });
  if ((response.statusCode ?? 0) >= 300) throw new TransferError(`upload of ${file} refused: ${await reasonOf(response)}`);
  response.resume();
  return measure.result();
}

/**
 * GETs a download URL into `target` through a temporary file beside it, measuring as it writes;
 * the file appears only when size and checksums match `expected` (nothing is left otherwise).
 */
export async function downloadFile(url: string, target: string, expected: Measured, signal?: AbortSignal): Promise<Measured> {
  const source = new URL(url);
  const temporary = `${target}.${randomUUID()}.partial`;
  const measure = measuring();
  try {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      requestFor(source)(source, { method: 'GET', signal }).on('response', resolve).on('error', reject).end();
    }).catch((error: Error) => {
      throw new TransferError(`download failed: ${error.message}`);
    });
    if ((response.statusCode ?? 0) >= 300) throw new TransferError(`download refused: ${await reasonOf(response)}`);
    await pipeline(response as Readable, measure.stream, createWriteStream(temporary, { highWaterMark: 1 << 20 }));
    const measured = measure.result();
    for (const field of ['size', 'sha256', 'md5'] as const) {
      if (measured[field] !== expected[field]) {
        throw new TransferError(`downloaded ${field} ${measured[field]} does not match the manifest's ${expected[field]}; nothing was written`);
      }
    }
    await rename(temporary, target);
    return measured;
  } finally {
    await rm(temporary, { force: true });
  }
}
