import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { IntegrityError } from '../errors.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';

/** The size and checksums an artifact's bytes must have. */
export interface ExpectedChecksums {
  size: number;
  md5: string;
  sha256: string;
}

/**
 * md5 on a worker thread while the caller hashes sha256, so the two digests take the time of
 * the slower one (md5: OpenSSL has SHA extensions for sha256 here, none for md5) instead of
 * their sum. The bytes travel in a few reused buffers handed back and forth (transferred, not
 * copied), which also spares the page faults a fresh buffer per chunk costs.
 */
const MD5_WORKER = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('md5');
parentPort.on('message', (message) => {
  if (message === null) { parentPort.postMessage({ digest: hash.digest('hex') }); return; }
  hash.update(new Uint8Array(message.buffer, 0, message.length));
  parentPort.postMessage({ buffer: message.buffer }, [message.buffer]);
});`;
const BUFFER_BYTES = 4 << 20;
const BUFFERS = 4;
/** Below this many bytes a thread costs more than it saves: md5 is then computed on the caller's thread. */
const MD5_WORKER_FROM = 16 << 20;

class Md5OnWorker {
  private readonly worker = new Worker(MD5_WORKER, { eval: true });
  private readonly free: ArrayBuffer[] = Array.from({ length: BUFFERS }, () => new ArrayBuffer(BUFFER_BYTES));
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private digest: string | undefined;

  constructor() {
    this.worker.on('message', (message: { buffer?: ArrayBuffer; digest?: string }) => {
      if (message.buffer) this.free.push(message.buffer);
      if (message.digest !== undefined) this.digest = message.digest;
      this.notify();
    });
    const fail = (error: Error) => {
      this.failure ??= error;
      this.notify();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', () => fail(new Error('the md5 worker thread exited before its digest')));
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!ready() && !this.failure) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
  }

  /** A buffer of BUFFER_BYTES to fill and then `send`, once the worker has handed one back. */
  async buffer(): Promise<Buffer> {
    await this.until(() => this.free.length > 0);
    return Buffer.from(this.free.pop()!);
  }

  /** Hands a buffer from `buffer()` to the worker, its first `length` bytes to hash; it is not to be touched after. */
  send(buffer: Buffer, length: number): void {
    const whole = buffer.buffer as ArrayBuffer; // one of `free`, never a shared or pooled one
    this.worker.postMessage({ buffer: whole, length }, [whole]);
  }

  /** Copies bytes the caller keeps into the worker's buffers. */
  async update(bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.length; offset += BUFFER_BYTES) {
      const piece = bytes.subarray(offset, offset + BUFFER_BYTES);
      const buffer = await this.buffer();
      buffer.set(piece);
      this.send(buffer, piece.length);
    }
  }

  async hex(): Promise<string> {
    this.worker.postMessage(null);
    await this.until(() => this.digest !== undefined);
    return this.digest!;
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/**
 * Size, md5 and sha256 of a stream of bytes, read once (never holding it in memory): sha256
 * on this thread, md5 on a worker thread once the bytes pass MD5_WORKER_FROM (the first ones
 * are kept until then, at most that many, then handed over in order).
 */
export async function measureBytes(chunks: AsyncIterable<unknown>): Promise<ExpectedChecksums> {
  const sha256 = createHash('sha256');
  let held: Buffer[] | undefined = [];
  let worker: Md5OnWorker | undefined;
  let size = 0;
  try {
    for await (const chunk of chunks) {
      const bytes = chunk as Buffer;
      if (worker) await worker.update(bytes);
      else held!.push(Buffer.from(bytes));
      sha256.update(bytes);
      size += bytes.length;
      if (!worker && size >= MD5_WORKER_FROM) {
        worker = new Md5OnWorker();
        for (const early of held!) await worker.update(early);
        held = undefined;
      }
    }
    const md5 = worker ? await worker.hex() : held!.reduce((hash, bytes) => hash.update(bytes), createHash('md5')).digest('hex');
    return { size, md5, sha256: sha256.digest('hex') };
  } finally {
    await worker?.close();
  }
}

/**
 * Size, md5 and sha256 of a file, read once through `handle` from its start: each buffer read
 * is hashed with sha256 here, then handed (not copied) to the md5 worker. A small file is
 * hashed on this thread alone.
 */
export async function measureFile(handle: FileHandle, signal?: AbortSignal): Promise<ExpectedChecksums> {
  const sha256 = createHash('sha256');
  const small = (await handle.stat()).size < MD5_WORKER_FROM;
  const worker = small ? undefined : new Md5OnWorker();
  const md5 = small ? createHash('md5') : undefined;
  const own = small ? Buffer.allocUnsafe(BUFFER_BYTES) : undefined;
  let size = 0;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const buffer = own ?? (await worker!.buffer());
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
      if (bytesRead === 0) break;
      sha256.update(buffer.subarray(0, bytesRead));
      if (md5) md5.update(buffer.subarray(0, bytesRead));
      else worker!.send(buffer, bytesRead);
      size += bytesRead;
    }
    return { size, md5: md5 ? md5.digest('hex') : await worker!.hex(), sha256: sha256.digest('hex') };
  } finally {
    await worker?.close();
  }
}

/** sha256 and size of a file, read once through `handle` from its start into one reused buffer. */
export async function sha256OfFile(handle: FileHandle, signal?: AbortSignal): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  let size = 0;
  for (;;) {
    signal?.throwIfAborted();
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    size += bytesRead;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Streams a stored object once through md5 and sha256. */
export async function measureStoredObject(artifacts: ArtifactStore, key: string): Promise<ExpectedChecksums> {
  return measureBytes(await artifacts.get(key));
}

/**
 * Checks that the stored bytes at `key` are the ones an uploader measured: the size first (a
 * cheap HEAD), then md5 and sha256 over the stored bytes. Throws IntegrityError naming what
 * differs. With `acceptStoreMd5`, an ETag equal to the expected md5 is taken as the store's own
 * measurement and the bytes are not read again: S3 makes a single-part upload's ETag the md5 of
 * what it stored, and the filesystem store records the md5 it computed while writing; anything
 * else (multipart ETags, encrypted objects, files written behind the store) is still read and
 * hashed. The uploader's sha256 is then trusted as measured in the same pass as its md5.
 */
export async function verifyStoredArtifact(
  artifacts: ArtifactStore,
  key: string,
  expected: ExpectedChecksums,
  options: { acceptStoreMd5?: boolean } = {},
): Promise<void> {
  const head = await artifacts.head(key);
  if (!head) throw new IntegrityError(`${key} was not uploaded`);
  if (head.size !== expected.size) {
    throw new IntegrityError(`${key} holds ${head.size} bytes, the uploader sent ${expected.size}`);
  }
  if (options.acceptStoreMd5 && head.etag === expected.md5) return;
  const measured = await measureStoredObject(artifacts, key);
  for (const field of ['size', 'md5', 'sha256'] as const) {
    if (measured[field] !== expected[field]) {
      throw new IntegrityError(`${key} ${field} is ${measured[field]}, the uploader measured ${expected[field]}`);
    }
  }
}
