import { Hono, type Context } from 'hono';
import type { IncomingMessage } from 'node:http';
import { finished, Readable, Transform } from 'node:stream';
import { NotFoundError, ValidationError } from '../../core/errors.ts';
import { MULTIPART_LIMITS } from '../../core/images/multipart.ts';
import type { ArtifactStore, MultipartPart } from '../../ports/artifact-store.ts';
import { problem } from '../problem.ts';

/** Where the embedded server serves artifact bytes; the composition root gives the store `<server URL>` + this. */
export const ARTIFACT_ROUTE_PREFIX = '/artifacts';

/** A store whose upload and download URLs point at this endpoint (the filesystem store). */
export interface SignedUrlArtifactStore extends ArtifactStore {
  verifySignedRequest(method: 'GET' | 'PUT', key: string, expires: string | undefined, signature: string | undefined): 'valid' | 'expired' | 'invalid';
  /** Checks a multipart part URL (absent where the store takes no multipart uploads). */
  verifySignedPart?(key: string, query: Record<string, string | undefined>): 'valid' | 'expired' | 'invalid';
  putPart?(key: string, uploadId: string, number: number, sha256: string, body: Readable, maxBytes: number): Promise<MultipartPart>;
  /** Bytes `start` to `end` (inclusive): answers ranged GETs (absent: the whole object, 200). */
  getRange?(key: string, start: number, end: number): Promise<Readable>;
}

/** One `bytes=START-END` (or `START-`, or `-SUFFIX`) range within `size`; undefined for anything else (the whole object is sent). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/**
 * The largest artifact one signed PUT takes: S3's limit for a single PUT (5 GiB), which the
 * presigned URLs of AWS have too. Larger artifacts go in multipart uploads (parts of up to 5 GiB
 * each, as many as the disk holds).
 */
export const MAX_ARTIFACT_UPLOAD_BYTES = 5 * 1024 ** 3;

/** Passes at most `maxBytes` through; past that it fails, so the store discards the partial write. */
function limitedTo(maxBytes: number): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      total += chunk.length;
      if (total > maxBytes) return done(Object.assign(new Error(`upload exceeds ${maxBytes} bytes`), { code: 'CFS_BODY_LIMIT' }));
      done(null, chunk);
    },
  });
}

/** A 413 that closes the connection, so the rest of the upload is not read off the socket. */
function tooLarge(c: Context, detail: string) {
  c.header('Connection', 'close');
  return problem(c, 413, detail, { field: 'body' });
}

function servesSignedUrls(store: ArtifactStore): store is SignedUrlArtifactStore {
  return typeof (store as Partial<SignedUrlArtifactStore>).verifySignedRequest === 'function';
}

/**
 * The key a request names: the raw path after the prefix, not decoded, so `%2F` or `%2e%2e`
 * never turn into separators; the store refuses any key outside its directory.
 */
function keyOf(c: Context): string {
  const path = new URL(c.req.url).pathname;
  return path.slice(ARTIFACT_ROUTE_PREFIX.length + 1);
}

function refuse(c: Context, method: 'GET' | 'PUT', store: SignedUrlArtifactStore, key: string) {
  const check = store.verifySignedRequest(method, key, c.req.query('expires'), c.req.query('signature'));
  return refusal(c, check);
}

function refusal(c: Context, check: 'valid' | 'expired' | 'invalid') {
  if (check === 'valid') return undefined;
  return problem(c, 403, check === 'expired' ? 'this artifact URL has expired; ask for a new one' : 'the artifact URL signature is not valid for this request', {
    title: 'Forbidden',
  });
}

/**
 * The embedded server's artifact endpoint, the target of the filesystem store's signed URLs:
 * `GET /artifacts/<key>` streams an object, `PUT /artifacts/<key>` streams the request body into
 * the store (atomically, measured in the same pass) and answers with its size and checksums.
 * A missing, wrong or expired signature is a 403. Nothing is buffered whole. When the store
 * serves its own URLs (S3 presigns), no routes are mounted.
 */
export function artifactRoutes(store: ArtifactStore, options: { maxUploadBytes?: number } = {}): Hono {
  const maxUploadBytes = options.maxUploadBytes ?? MAX_ARTIFACT_UPLOAD_BYTES;
  const app = new Hono();
  if (!servesSignedUrls(store)) return app;

  app.on(['GET', 'HEAD'], `${ARTIFACT_ROUTE_PREFIX}/*`, async (c) => {
    const key = keyOf(c);
    const refused = refuse(c, 'GET', store, key);
    if (refused) return refused;
    const head = await store.head(key);
    if (!head) throw new NotFoundError('artifact', key);
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Content-Length': String(head.size), ETag: `"${head.etag}"` };
    if (store.getRange) headers['Accept-Ranges'] = 'bytes';
    if (c.req.method === 'HEAD') return c.body(null, 200, headers);
    const range = store.getRange ? parseRange(c.req.header('range'), head.size) : undefined;
    if (range === 'unsatisfiable') return c.body(null, 416, { 'Content-Range': `bytes */${head.size}` });
    if (range) {
      const part = await store.getRange!(key, range.start, range.end);
      const length = range.end - range.start + 1;
      return c.body(Readable.toWeb(part) as ReadableStream, 206, { ...headers, 'Content-Length': String(length), 'Content-Range': `bytes ${range.start}-${range.end}/${head.size}` });
    }
    const stream = await store.get(key);
    return c.body(Readable.toWeb(stream) as ReadableStream, 200, headers);
  });

  app.put(`${ARTIFACT_ROUTE_PREFIX}/*`, async (c, next) => {
    if (c.req.query('upload_id') === undefined) return next();
    const key = keyOf(c);
    if (!store.verifySignedPart || !store.putPart) return problem(c, 400, 'this artifact store takes no multipart uploads');
    const refused = refusal(c, store.verifySignedPart(key, c.req.query()));
    if (refused) return refused;
    const number = Number(c.req.query('part'));
    const sha256 = c.req.query('sha256')!;
    // The header S3 checks a part against: when sent, it must name the checksum the URL was signed for.
    const header = c.req.header('x-amz-checksum-sha256');
    if (header !== undefined && Buffer.from(header, 'base64').toString('hex') !== sha256) {
      return problem(c, 400, `x-amz-checksum-sha256 does not match the sha256 part ${number}'s URL was signed for`, { field: 'x-amz-checksum-sha256' });
    }
    const maxPart = Math.min(MULTIPART_LIMITS.maxPartBytes, maxUploadBytes);
    const declared = Number(c.req.header('content-length') ?? NaN);
    if (declared > maxPart) return tooLarge(c, `part ${number} is ${declared} bytes; one part is at most ${maxPart} bytes`);
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const body = incoming ?? (c.req.raw.body ? Readable.fromWeb(c.req.raw.body as import('node:stream/web').ReadableStream) : Readable.from([]));
    try {
      const part = await store.putPart(key, c.req.query('upload_id')!, number, sha256, body, maxPart);
      c.header('ETag', `"${part.etag ?? sha256}"`);
      return c.json(part);
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      if (code === 'ENOSPC') return problem(c, 507, `the artifact store's disk is full; part ${number} was not kept`, { title: 'Insufficient Storage' });
      // A refused part (wrong checksum, too large) may answer before its body is read whole: close the connection.
      if ((error as Error).name === 'ValidationError' || (error as Error).name === 'NotFoundError') {
        c.header('Connection', 'close');
        throw error;
      }
      if (incoming?.destroyed || ['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ABORT_ERR'].includes(code)) {
        throw new ValidationError(`the upload of part ${number} of ${key} was interrupted; nothing of it was kept`);
      }
      throw error;
    }
  });

  app.put(`${ARTIFACT_ROUTE_PREFIX}/*`, async (c) => {
    const key = keyOf(c);
    const refused = refuse(c, 'PUT', store, key);
    if (refused) return refused;
    const declared = Number(c.req.header('content-length') ?? NaN);
    if (declared > maxUploadBytes) return tooLarge(c, `the upload is ${declared} bytes; one artifact is at most ${maxUploadBytes} bytes`);
    // On Node the raw request is the cheapest stream; elsewhere convert the web body.
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const body = incoming ?? (c.req.raw.body ? Readable.fromWeb(c.req.raw.body as import('node:stream/web').ReadableStream) : Readable.from([]));
    let stored;
    try {
      // Counted while it streams (chunked uploads declare no length): past the limit the write fails and nothing is stored.
      const limited = limitedTo(maxUploadBytes);
      // An upload cut off (or failed) upstream fails the write too; the limit's own failure leaves the request be, so the 413 can still be sent.
      finished(body, (error) => error && limited.destroy(error));
      stored = await store.put(key, body.pipe(limited), { contentType: c.req.header('content-type') });
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      if (code === 'CFS_BODY_LIMIT') return tooLarge(c, `the upload of ${key} exceeds ${maxUploadBytes} bytes; nothing was stored`);
      if (incoming?.destroyed || ['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ABORT_ERR'].includes(code)) {
        throw new ValidationError(`the upload of ${key} was interrupted; nothing was stored`);
      }
      throw error;
    }
    c.header('ETag', `"${stored.etag}"`);
    return c.json(stored);
  });

  app.all(`${ARTIFACT_ROUTE_PREFIX}/*`, (c) => {
    c.header('Allow', 'GET, HEAD, PUT');
    return problem(c, 405, `${c.req.method} is not allowed on artifacts; allowed: GET, HEAD, PUT`);
  });
  return app;
}
