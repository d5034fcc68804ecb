import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NotFoundError, ValidationError } from '../../core/errors.ts';
import type { ArtifactStore, StoredObject } from '../../ports/artifact-store.ts';

const KEY_SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Refuses any key that could leave the store's directory. */
export function assertSafeKey(key: string): void {
  const segments = key.split('/');
  if (key.length === 0 || key.length > 1024 || segments.some((s) => !KEY_SEGMENT.test(s) || s === '.' || s === '..')) {
    throw new ValidationError(`invalid artifact key '${key}'`, 'key');
  }
}

/**
 * The artifact store on a local directory (the embedded default): `<root>/<bucket>/<path>`.
 * Writes go to a temporary file beside the target and are renamed into place, so a failed or
 * interrupted write leaves no object; md5 and sha256 are computed in the same pass.
 */
export class FsArtifactStore implements ArtifactStore {
  constructor(readonly root: string) {}

  /** The file behind a key (the runner and the engine on the same machine read it directly). */
  pathOf(key: string): string {
    assertSafeKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Readable | Buffer | string): Promise<StoredObject> {
    const target = this.pathOf(key);
    await mkdir(dirname(target), { recursive: true });
    const temporary = `${target}.${randomUUID()}.partial`;
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        md5.update(chunk);
        sha256.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    const source = typeof body === 'string' || Buffer.isBuffer(body) ? Readable.from([Buffer.from(body)]) : body;
    try {
      await pipeline(source, measure, createWriteStream(temporary, { highWaterMark: 1 << 20 }));
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    const md5Hex = md5.digest('hex');
    return { key, size, md5: md5Hex, sha256: sha256.digest('hex'), etag: md5Hex };
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    try {
      await stat(path);
    } catch {
      throw new NotFoundError('artifact', key);
    }
    return createReadStream(path, { highWaterMark: 1 << 20 });
  }

  async head(key: string): Promise<{ size: number; etag: string } | undefined> {
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { size: info.size, etag: `${info.size}-${Math.floor(info.mtimeMs)}` } : undefined;
    } catch {
      return undefined;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
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
        const full = join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile() && !entry.name.endsWith('.partial')) keys.push(relative(this.root, full).split(sep).join('/'));
      }
    };
    await walk(this.root);
    return keys.filter((k) => k.startsWith(prefix)).sort();
  }

  async uploadUrl(): Promise<string> {
    throw new Error('FsArtifactStore.uploadUrl: signed URLs are served by the embedded artifact endpoint (not wired yet)');
  }

  async downloadUrl(): Promise<string> {
    throw new Error('FsArtifactStore.downloadUrl: signed URLs are served by the embedded artifact endpoint (not wired yet)');
  }
}
