import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NotFoundError, ValidationError } from '../../core/errors.ts';
import { measureFile } from '../../core/images/verify-artifact.ts';
import type { ArtifactStore, MultipartPart, MultipartPartUrl, PromotedObject, StoredObject } from '../../ports/artifact-store.ts';
import { measuringStream, toReadable } from '../shared/measuring-stream.ts';

// No segment starts with a dot: that rules out '.' and '..', and leaves `.etags` to the store.
const KEY_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Where the store keeps the checksums it measured for each object (`<root>/.etags/<key>`). */
const ETAG_DIR = '.etags';

/** Where multipart uploads keep their parts until completion (`<directory of the key>/.multipart/<upload id>/`). */
const MULTIPART_DIR = '.multipart';

/** The embedded store's upload ids: 32 hex digits (no path can be made of one). */
const UPLOAD_ID = /^[a-f0-9]{32}$/;

/** A store error that means the disk cannot hold what is asked (the API answers 507). */
export function noSpace(detail: string): Error {
  return Object.assign(new Error(detail), { code: 'CFS_NO_SPACE' });
}

/** One object's record in ETAG_DIR (records written before sha256 and ctime were kept lack them). */
interface ChecksumRecord {
  md5?: string;
  sha256?: string;
  size?: number;
  mtimeMs?: number;
  ctimeMs?: number;
}

/** Refuses any key that could leave the store's directory. */
export function assertSafeKey(key: string): void {
  const segments = key.split('/');
  if (key.length === 0 || key.length > 1024 || segments.some((s) => !KEY_SEGMENT.test(s))) {
    throw new ValidationError(`invalid artifact key '${key}'`, 'key');
  }
}

/** The methods a signed URL can grant: GET (and HEAD) reads an object, PUT writes it. */
export type SignedMethod = 'GET' | 'PUT';

/** The outcome of checking a signed URL's query against the method and key it is used for. */
export type SignatureCheck = 'valid' | 'expired' | 'invalid';

const SECRET_BYTES = 32;

/**
 * The HMAC secret of the embedded server's signed URLs: generated once, kept (mode 0600) in the
 * data directory, so URLs handed out stay valid across a restart and no two data directories
 * share a secret.
 */
export async function loadOrCreateSigningSecret(file: string): Promise<Buffer> {
  try {
    const existing = await readFile(file);
    if (existing.length >= SECRET_BYTES) return existing;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dirname(file), { recursive: true });
  const secret = randomBytes(SECRET_BYTES);
  const temporary = `${file}.${randomUUID()}.partial`;
  await writeFile(temporary, secret, { mode: 0o600 });
  await rename(temporary, file);
  return secret;
}

export interface FsArtifactStoreOptions {
  /** Signs upload and download URLs (HMAC-SHA256); a random per-process secret when omitted. */
  secret?: Buffer;
  /** Where the embedded artifact endpoint is served (e.g. `http://127.0.0.1:8787/artifacts`); see setBaseUrl. */
  baseUrl?: string;
  /** The smallest multipart part (all but the last) the store takes; 1 MiB unless set (S3's is 5 MiB). */
  minPartBytes?: number;
}

/**
 * The artifact store on a local directory (the embedded default): `<root>/<bucket>/<path>`.
 * Writes go to a temporary file beside the target and are renamed into place, so a failed or
 * interrupted write leaves no object; md5 and sha256 are computed in the same pass. As S3 does
 * for single-part uploads, an object's ETag is the md5 of its bytes: the store records the md5
 * and sha256 it measured (`<root>/.etags/<key>`, with the file's size, mtime and ctime, so a
 * file changed behind the store's back gets a `<size>-<mtime>` ETag and no `measured` record
 * instead). Upload and
 * download URLs point at the embedded server's streaming artifact endpoint
 * (functions/api/routes/artifacts.ts), signed with an HMAC over method, key and expiry.
 */
export class FsArtifactStore implements ArtifactStore {
  private readonly secret: Buffer;
  private baseUrl: string | undefined;
  readonly minPartBytes: number;

  constructor(
    readonly root: string,
    options: FsArtifactStoreOptions = {},
  ) {
    this.secret = options.secret ?? randomBytes(SECRET_BYTES);
    this.baseUrl = options.baseUrl?.replace(/\/+$/, '');
    this.minPartBytes = options.minPartBytes ?? 1024 * 1024;
  }

  /** The server's address is known only once it listens; the composition root sets it then. */
  setBaseUrl(baseUrl: string): void {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  /** The file behind a key (the runner and the engine on the same machine read it directly). */
  pathOf(key: string): string {
    assertSafeKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Readable | Buffer | string): Promise<StoredObject> {
    const target = this.pathOf(key);
    await mkdir(dirname(target), { recursive: true });
    const temporary = `${target}.${randomUUID()}.partial`;
    const measure = measuringStream();
    const source = toReadable(body);
    try {
      await pipeline(source, measure.stream, createWriteStream(temporary, { highWaterMark: 1 << 20 }));
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    const { size, md5, sha256 } = measure.result();
    await this.recordChecksums(key, md5, sha256);
    return { key, size, md5, sha256, etag: md5 };
  }

  /**
   * Moves a finished file (the runner's squashed result, on this machine) into the store under
   * `key` instead of copying it: it is renamed to a temporary name beside the target, measured
   * there in one read (size, sha256, and md5 on a second thread: the store's own measurement, as put's), renamed into
   * place and its checksums recorded. A file on another filesystem is copied through put. The
   * file is gone from its old place once this resolves; on failure no object is left.
   */
  async adopt(key: string, file: string): Promise<StoredObject> {
    const target = this.pathOf(key);
    await mkdir(dirname(target), { recursive: true });
    const temporary = `${target}.${randomUUID()}.partial`;
    try {
      await rename(file, temporary);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      const copied = await this.put(key, createReadStream(file, { highWaterMark: 4 << 20 }));
      await rm(file, { force: true });
      return copied;
    }
    try {
      const measured = await measureFileAt(temporary);
      await rename(temporary, target);
      await this.recordChecksums(key, measured.md5, measured.sha256);
      return { key, ...measured, etag: measured.md5 };
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  /**
   * What the store measured when it wrote the object (put or adopt), while the file is provably
   * unchanged since: same size, mtime and ctime (no write, truncate, touch or chmod, which all
   * move ctime). Undefined otherwise, or for a record from before checksums were kept: the
   * caller then reads the bytes itself.
   */
  async measured(key: string): Promise<StoredObject | undefined> {
    const info = await stat(this.pathOf(key)).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    const recorded = await this.readRecord(key);
    if (!recorded || recorded.size !== info.size || recorded.mtimeMs !== info.mtimeMs || recorded.ctimeMs !== info.ctimeMs) return undefined;
    if (typeof recorded.md5 !== 'string' || typeof recorded.sha256 !== 'string') return undefined;
    return { key, size: info.size, md5: recorded.md5, sha256: recorded.sha256, etag: recorded.md5 };
  }

  /**
   * Moves a staged upload to its final key with one rename (atomic: a PUT to `from` after it
   * makes a new file there and leaves `to` alone). When the moved file is the one the store
   * measured while writing (same inode, size and mtime, record taken while its ctime still
   * matched), that measurement answers; otherwise the bytes now at `to`, which no URL writes to,
   * are read and measured.
   */
  async promote(from: string, to: string): Promise<PromotedObject | undefined> {
    const source = this.pathOf(from);
    const target = this.pathOf(to);
    const before = await stat(source).catch(() => undefined);
    if (!before?.isFile()) return undefined;
    const recorded = await this.readRecord(from);
    const trusted =
      recorded?.size === before.size && recorded.mtimeMs === before.mtimeMs && recorded.ctimeMs === before.ctimeMs && typeof recorded.md5 === 'string' && typeof recorded.sha256 === 'string';
    await mkdir(dirname(target), { recursive: true });
    try {
      await rename(source, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    await rm(this.etagPath(from), { force: true });
    const after = await stat(target);
    // A PUT that replaced `from` between the stat and the rename moved a different file: measure it.
    if (trusted && after.ino === before.ino && after.size === before.size && after.mtimeMs === before.mtimeMs) {
      await this.recordChecksums(to, recorded.md5!, recorded.sha256!);
      return { key: to, size: after.size, etag: recorded.md5!, md5: recorded.md5!, sha256: recorded.sha256! };
    }
    const measured = await measureFileAt(target);
    await this.recordChecksums(to, measured.md5, measured.sha256);
    return { key: to, ...measured, etag: measured.md5 };
  }

  private etagPath(key: string): string {
    return join(this.root, ETAG_DIR, ...key.split('/'));
  }

  /** Records the measured md5 and sha256 with the file's size, mtime and ctime; a stale record is simply not used. */
  private async recordChecksums(key: string, md5: string, sha256: string): Promise<void> {
    const { size, mtimeMs, ctimeMs } = await stat(this.pathOf(key));
    const file = this.etagPath(key);
    await mkdir(dirname(file), { recursive: true });
    const temporary = `${file}.${randomUUID()}.partial`;
    await writeFile(temporary, JSON.stringify({ md5, sha256, size, mtimeMs, ctimeMs }));
    await rename(temporary, file);
  }

  private async readRecord(key: string): Promise<ChecksumRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.etagPath(key), 'utf8')) as ChecksumRecord;
    } catch {
      return undefined;
    }
  }

  private async recordedEtag(key: string, size: number, mtimeMs: number): Promise<string | undefined> {
    const recorded = await this.readRecord(key);
    return recorded?.size === size && recorded.mtimeMs === mtimeMs ? recorded.md5 : undefined;
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw new NotFoundError('artifact', key);
    return createReadStream(path, { highWaterMark: 1 << 20 });
  }

  /** Bytes `start` to `end` (inclusive) of an object, for ranged GETs (parallel downloads). */
  async getRange(key: string, start: number, end: number): Promise<Readable> {
    const path = this.pathOf(key);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw new NotFoundError('artifact', key);
    return createReadStream(path, { start, end, highWaterMark: 1 << 20 });
  }

  async head(key: string): Promise<{ size: number; etag: string } | undefined> {
    try {
      const info = await stat(this.pathOf(key));
      if (!info.isFile()) return undefined;
      return { size: info.size, etag: (await this.recordedEtag(key, info.size, info.mtimeMs)) ?? `${info.size}-${Math.floor(info.mtimeMs)}` };
    } catch {
      return undefined;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
    await rm(this.etagPath(key), { force: true });
  }

  /**
   * A put or adopt killed before its rename leaves its `.partial` file (and maybe its checksum
   * record's), and a multipart upload never completed leaves its parts (`.multipart/`): remove them.
   */
  async discardIncomplete(prefix: string): Promise<void> {
    // Only the directory the prefix names is walked, never the whole store; its segments are checked as a key's are.
    if (!prefix.endsWith('/')) throw new ValidationError(`discardIncomplete takes a directory prefix ending in '/', not '${prefix}'`, 'prefix');
    assertSafeKey(prefix.slice(0, -1));
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const full = join(dir, entry.name);
        if (entry.isDirectory() && entry.name === MULTIPART_DIR) await rm(full, { recursive: true, force: true });
        else if (entry.isDirectory()) await walk(full);
        else if (entry.name.endsWith('.partial')) await rm(full, { force: true });
      }
    };
    for (const top of [this.root, join(this.root, ETAG_DIR)]) await walk(join(top, ...prefix.split('/').filter(Boolean)));
  }

  /** The directory a directory prefix names (`bucket/path/`), its segments checked as a key's are. */
  private prefixDir(prefix: string, top: string = this.root): string {
    if (!prefix.endsWith('/')) throw new ValidationError(`a directory prefix ends in '/', not '${prefix}'`, 'prefix');
    assertSafeKey(prefix.slice(0, -1));
    return join(top, ...prefix.split('/').filter(Boolean));
  }

  /** The objects' files under `dir` (not the store's dot entries, not what an interrupted write left). */
  private async filesUnder(dir: string): Promise<string[]> {
    const files: string[] = [];
    const walk = async (at: string): Promise<void> => {
      for (const entry of await readdir(at, { withFileTypes: true }).catch(() => [])) {
        if (entry.name.startsWith('.')) continue;
        const full = join(at, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile() && !entry.name.endsWith('.partial')) files.push(full);
      }
    };
    await walk(dir);
    return files;
  }

  /**
   * Removes the directory a prefix names with everything in it (objects, what interrupted writes
   * left) and its checksum records: one recursive removal each, without listing the store. A put
   * racing with it fails (its rename finds no directory) rather than leaving a half object.
   */
  async deletePrefix(prefix: string): Promise<number> {
    const dir = this.prefixDir(prefix);
    const count = (await this.filesUnder(dir)).length;
    await rm(dir, { recursive: true, force: true });
    await rm(this.prefixDir(prefix, join(this.root, ETAG_DIR)), { recursive: true, force: true });
    return count;
  }

  async listModified(prefix: string): Promise<Array<{ key: string; modified: Date }>> {
    const found: Array<{ key: string; modified: Date }> = [];
    for (const file of await this.filesUnder(this.prefixDir(prefix))) {
      const info = await stat(file).catch(() => undefined);
      if (info?.isFile()) found.push({ key: relative(this.root, file).split(sep).join('/'), modified: info.mtime });
    }
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const full = join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile() && !entry.name.endsWith('.partial')) keys.push(relative(this.root, full).split(sep).join('/'));
      }
    };
    await walk(this.root);
    return keys.filter((k) => k.startsWith(prefix)).sort();
  }

  /**
   * Where an upload keeps its parts: beside its key (`<key's directory>/.multipart/<upload id>/`),
   * so removing the image's directory, or discardIncomplete on its prefix, takes them too.
   */
  private uploadDir(key: string, uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw new ValidationError(`'${uploadId.slice(0, 80)}' is not an upload id of this store`, 'upload_id');
    return join(dirname(this.pathOf(key)), MULTIPART_DIR, uploadId);
  }

  /** The key an upload was started for; undefined when there is no such upload, or it is another key's. */
  private async uploadOf(key: string, uploadId: string): Promise<string | undefined> {
    const dir = this.uploadDir(key, uploadId);
    const started = await readFile(join(dir, 'upload.json'), 'utf8').then((text) => JSON.parse(text) as { key?: string }, () => undefined);
    return started?.key === key ? dir : undefined;
  }

  /** Refuses (CFS_NO_SPACE) when the store's filesystem has less than `bytes` free for unprivileged writers. */
  private async assertRoom(bytes: number, what: string): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const info = await statfs(this.root);
    const free = info.bavail * info.bsize;
    if (free < bytes) throw noSpace(`${what} needs ${bytes} bytes and the artifact store's disk has ${free} free`);
  }

  /**
   * Starts a multipart upload: a directory under `<root>/.multipart/` that keeps each part as a
   * file of its own, with the sha256 it was checked against. Refused (CFS_NO_SPACE) when the
   * disk has less room than the whole object.
   */
  async createMultipart(key: string, size: number): Promise<string> {
    assertSafeKey(key);
    await this.assertRoom(size, `an upload of ${size} bytes`);
    const uploadId = randomBytes(16).toString('hex');
    const dir = this.uploadDir(key, uploadId);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'upload.json'), JSON.stringify({ key, size, created: new Date().toISOString() }));
    return uploadId;
  }

  /** A signed URL of the embedded endpoint for one part, bound to its sha256 (the PUT must hash to it). */
  async multipartPartUrl(key: string, uploadId: string, part: { number: number; sha256: string }, expiresInSeconds: number): Promise<MultipartPartUrl> {
    if (!(await this.uploadOf(key, uploadId))) throw new NotFoundError('multipart upload', uploadId);
    if (!this.baseUrl) throw new Error('FsArtifactStore: the artifact endpoint URL is not known yet (the server is not listening)');
    const expires = String(Math.floor(Date.now() / 1000) + Math.max(1, Math.floor(expiresInSeconds)));
    const grant = partGrant(uploadId, part.number, part.sha256);
    const query = new URLSearchParams({ upload_id: uploadId, part: String(part.number), sha256: part.sha256, expires, signature: this.sign('PUT', key, `${expires}\n${grant}`) });
    return { number: part.number, url: `${this.baseUrl}/${key}?${query}`, headers: { 'x-amz-checksum-sha256': Buffer.from(part.sha256, 'hex').toString('base64') } };
  }

  /** Checks a part URL's signature (upload, part number, sha256 and expiry, for this key). */
  verifySignedPart(key: string, query: { upload_id?: string; part?: string; sha256?: string; expires?: string; signature?: string }, now = Date.now()): SignatureCheck {
    const { upload_id: uploadId, part, sha256, expires, signature } = query;
    if (!uploadId || !part || !sha256 || !/^\d{1,5}$/.test(part) || !/^[a-f0-9]{64}$/.test(sha256)) return 'invalid';
    if (!expires || !signature || !/^\d{1,12}$/.test(expires) || !/^[a-f0-9]{64}$/.test(signature)) return 'invalid';
    const expected = Buffer.from(this.sign('PUT', key, `${expires}\n${partGrant(uploadId, Number(part), sha256)}`), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return 'invalid';
    return Number(expires) * 1000 < now ? 'expired' : 'valid';
  }

  /**
   * Writes one part through a temporary file, hashing it as it streams: it becomes the part only
   * when its bytes hash to `sha256` and it holds at most `maxBytes` (ValidationError otherwise;
   * a part received before under that number stays as it was).
   */
  async putPart(key: string, uploadId: string, number: number, sha256: string, body: Readable, maxBytes: number): Promise<MultipartPart> {
    const dir = await this.uploadOf(key, uploadId);
    if (!dir) throw new NotFoundError('multipart upload', uploadId);
    const target = join(dir, String(number));
    const temporary = `${target}.${randomUUID()}.partial`;
    const hash = createHash('sha256');
    let size = 0;
    const counting = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new ValidationError(`part ${number} is larger than ${maxBytes} bytes; nothing of it was kept`, 'body'));
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, counting, createWriteStream(temporary, { highWaterMark: 1 << 20 }));
      const received = hash.digest('hex');
      if (received !== sha256) {
        throw new ValidationError(`part ${number}'s bytes hash to sha256 ${received}, not the ${sha256} its URL was signed for; nothing of it was kept`, 'x-amz-checksum-sha256');
      }
      await rename(temporary, target);
      await writeFile(`${target}.json`, JSON.stringify({ number, size, sha256 }));
    } finally {
      await rm(temporary, { force: true });
    }
    return { number, size, sha256, etag: sha256 };
  }

  async listMultipartParts(key: string, uploadId: string): Promise<MultipartPart[] | undefined> {
    const dir = await this.uploadOf(key, uploadId);
    if (!dir) return undefined;
    const parts: MultipartPart[] = [];
    for (const name of await readdir(dir)) {
      if (!/^\d+\.json$/.test(name)) continue;
      const record = await readFile(join(dir, name), 'utf8').then((text) => JSON.parse(text) as MultipartPart, () => undefined);
      if (record) parts.push({ number: record.number, size: record.size, sha256: record.sha256, etag: record.sha256 });
    }
    return parts.sort((a, b) => a.number - b.number);
  }

  /**
   * Joins the parts in order into the object at `key` (atomically, as put: a temporary file
   * renamed into place), measuring md5 and sha256 in the same pass so promotion trusts them, then
   * removes the upload. The parts stay until the join has succeeded, so a failed join can be
   * completed again; the disk must hold the parts and the object at once (CFS_NO_SPACE before
   * starting when it cannot).
   */
  async completeMultipart(key: string, uploadId: string, parts: MultipartPart[]): Promise<void> {
    const dir = await this.uploadOf(key, uploadId);
    if (!dir) throw new NotFoundError('multipart upload', uploadId);
    const total = parts.reduce((sum, part) => sum + part.size, 0);
    await this.assertRoom(total, `joining ${parts.length} parts of ${total} bytes`);
    const chunks = async function* () {
      for (const part of parts) yield* createReadStream(join(dir, String(part.number)), { highWaterMark: 4 << 20 });
    };
    const stored = await this.put(key, Readable.from(chunks(), { objectMode: false }));
    if (stored.size !== total) {
      await this.delete(key);
      throw new Error(`joining upload ${uploadId} wrote ${stored.size} bytes, the parts hold ${total}`);
    }
    await rm(dir, { recursive: true, force: true });
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    const dir = await this.uploadOf(key, uploadId);
    if (dir) await rm(dir, { recursive: true, force: true });
  }

  async uploadUrl(key: string, expiresInSeconds: number): Promise<string> {
    return this.signedUrl('PUT', key, expiresInSeconds);
  }

  async downloadUrl(key: string, expiresInSeconds: number): Promise<string> {
    return this.signedUrl('GET', key, expiresInSeconds);
  }

  /** Checks a signed URL's `expires` and `signature` for the method and key it is used on. */
  verifySignedRequest(method: SignedMethod, key: string, expires: string | undefined, signature: string | undefined, now = Date.now()): SignatureCheck {
    if (!expires || !signature || !/^\d{1,12}$/.test(expires) || !/^[a-f0-9]{64}$/.test(signature)) return 'invalid';
    const expected = Buffer.from(this.sign(method, key, expires), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return 'invalid';
    return Number(expires) * 1000 < now ? 'expired' : 'valid';
  }

  private signedUrl(method: SignedMethod, key: string, expiresInSeconds: number): string {
    assertSafeKey(key);
    if (!this.baseUrl) throw new Error('FsArtifactStore: the artifact endpoint URL is not known yet (the server is not listening)');
    const expires = String(Math.floor(Date.now() / 1000) + Math.max(1, Math.floor(expiresInSeconds)));
    const query = new URLSearchParams({ expires, signature: this.sign(method, key, expires) });
    return `${this.baseUrl}/${key}?${query}`;
  }

  private sign(method: SignedMethod, key: string, expires: string): string {
    // A part URL signs `<expires>\npart ...` in place of the expiry alone, so it never passes for a whole-object URL.
    return createHmac('sha256', this.secret).update(`${method}\n${key}\n${expires}`).digest('hex');
  }
}

/** What a part URL's signature covers besides method, key and expiry. */
/** Size, md5 and sha256 of the file at `path`, md5 on a second thread (see measureFile). */
async function measureFileAt(path: string): Promise<{ size: number; md5: string; sha256: string }> {
  const handle = await open(path, 'r');
  try {
    return await measureFile(handle);
  } finally {
    await handle.close();
  }
}

function partGrant(uploadId: string, number: number, sha256: string): string {
  return `part ${uploadId} ${number} ${sha256}`;
}
