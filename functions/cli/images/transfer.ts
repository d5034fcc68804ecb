import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { silentProgress, type TransferProgress } from '../progress/transfer-bar.ts';

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

/** How a download moves: in ranged parts from `threshold` bytes up (where the server takes ranges), `parallel` at once. */
export interface DownloadOptions {
  progress?: TransferProgress;
  /** Files from this size up are fetched in ranges (default 64 MiB). */
  threshold?: number;
  partSize?: number;
  parallel?: number;
  /** Names the transfer on the progress bar (default: the target's name). */
  label?: string;
}

function get(source: URL, signal: AbortSignal | undefined, range?: string): Promise<IncomingMessage> {
  return new Promise<IncomingMessage>((resolve, reject) => {
    requestFor(source)(source, { method: 'GET', signal, headers: range ? { Range: range } : {} })
      .on('response', resolve)
      .on('error', reject)
      .end();
  }).catch((error: Error) => {
    throw new TransferError(`download failed: ${error.message}`);
  });
}

/** Counts bytes into the progress as they pass. */
function counting(progress: TransferProgress): Transform {
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding, done) {
      progress.advance(chunk.length);
      done(null, chunk);
    },
  });
}

/** Writes a response's bytes at `offset` of an open file, checking it sent exactly `length`. */
async function writeRange(response: IncomingMessage, file: import('node:fs/promises').FileHandle, offset: number, length: number, progress: TransferProgress): Promise<void> {
  let at = offset;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (at + chunk.length > offset + length) throw new TransferError(`the server sent more than the ${length} bytes asked for at ${offset}`);
    await file.write(chunk, 0, chunk.length, at);
    at += chunk.length;
    progress.advance(chunk.length);
  }
  if (at !== offset + length) throw new TransferError(`the server sent ${at - offset} of the ${length} bytes asked for at ${offset}`);
}

/**
 * GETs a download URL into `target` through a temporary file beside it; the file appears only
 * when size, md5 and sha256 match `expected` (nothing is left otherwise). From `threshold` bytes
 * up it asks for ranges, `parallel` at once, written in place and hashed once all have arrived;
 * a server that answers a range with the whole object (200) is read as one stream instead.
 */
export async function downloadFile(url: string, target: string, expected: Measured, signal?: AbortSignal, options: DownloadOptions = {}): Promise<Measured> {
  const source = new URL(url);
  const temporary = `${target}.${randomUUID()}.partial`;
  const progress = options.progress ?? silentProgress;
  const partSize = options.partSize ?? 16 * 1024 * 1024;
  const inParts = expected.size >= (options.threshold ?? 64 * 1024 * 1024) && expected.size > partSize;
  progress.start(options.label ?? target.split('/').pop() ?? target, expected.size);
  try {
    const first = await get(source, signal, inParts ? `bytes=0-${partSize - 1}` : undefined);
    if ((first.statusCode ?? 0) >= 300) throw new TransferError(`download refused: ${await reasonOf(first)}`);
    let measured: Measured;
    if (first.statusCode === 206) {
      const file = await open(temporary, 'w');
      try {
        await file.truncate(expected.size);
        const count = Math.ceil(expected.size / partSize);
        let next = 2;
        const range = (number: number) => ({ offset: (number - 1) * partSize, length: Math.min(partSize, expected.size - (number - 1) * partSize) });
        const worker = async () => {
          for (let number = next++; number <= count; number = next++) {
            const { offset, length } = range(number);
            const response = await get(source, signal, `bytes=${offset}-${offset + length - 1}`);
            if (response.statusCode !== 206) throw new TransferError(`download of bytes ${offset}-${offset + length - 1} refused: ${await reasonOf(response)}`);
            await writeRange(response, file, offset, length, progress);
          }
        };
        await Promise.all([writeRange(first, file, 0, range(1).length, progress), ...Array.from({ length: Math.max(1, (options.parallel ?? 4) - 1) }, worker)]);
      } finally {
        await file.close();
      }
      const measure = measuring();
      await pipeline(createReadStream(temporary, { highWaterMark: 4 << 20 }), measure.stream, async function* (chunks) {
        for await (const _ of chunks) void _;
      });
      measured = measure.result();
    } else {
      const measure = measuring();
      await pipeline(first as Readable, counting(progress), measure.stream, createWriteStream(temporary, { highWaterMark: 1 << 20 }));
      measured = measure.result();
    }
    for (const field of ['size', 'sha256', 'md5'] as const) {
      if (measured[field] !== expected[field]) {
        throw new TransferError(`downloaded ${field} ${measured[field]} does not match the manifest's ${expected[field]}; nothing was written`);
      }
    }
    await rename(temporary, target);
    return measured;
  } finally {
    progress.finish();
    await rm(temporary, { force: true });
  }
}
