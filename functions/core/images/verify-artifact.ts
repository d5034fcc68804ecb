import { createHash } from 'node:crypto';
import { IntegrityError } from '../errors.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';

/** The size and checksums an artifact's bytes must have. */
export interface ExpectedChecksums {
  size: number;
  md5: string;
  sha256: string;
}

/** Size, md5 and sha256 of a stream of bytes, read once (never holding it in memory). */
export async function measureBytes(chunks: AsyncIterable<unknown>): Promise<ExpectedChecksums> {
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    md5.update(chunk as Buffer);
    sha256.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, md5: md5.digest('hex'), sha256: sha256.digest('hex') };
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
