import type { Readable } from 'node:stream';

/** What the store measured while it wrote an object, in the same pass as the write. */
export interface StoredObject {
  key: string;
  size: number;
  md5: string;
  sha256: string;
  etag: string;
}

/**
 * What the store itself knows of an object it just moved into place: size and ETag always, md5
 * and sha256 only where the store measured them (the filesystem store's write-time record, S3's
 * ETag of a single-part object and its full-object SHA-256 checksum).
 */
export interface PromotedObject {
  key: string;
  size: number;
  etag: string;
  md5?: string;
  sha256?: string;
}

/** One part a multipart upload has received, as the store recorded it. */
export interface MultipartPart {
  /** 1-based position in the object. */
  number: number;
  size: number;
  /** Hex SHA-256 of the part's bytes, as the store checked them on arrival (absent where a store keeps none). */
  sha256?: string;
  /** The store's ETag of the part (S3 needs it to complete). */
  etag?: string;
}

/** A URL to PUT one part to, with the headers the PUT must carry (the part's checksum, signed into the URL). */
export interface MultipartPartUrl {
  number: number;
  url: string;
  headers: Record<string, string>;
}

/**
 * Image bytes (IMS layout: `<bucket>/<image id>/<artifact>`). Keys are `bucket/path`; a link
 * path is `s3://<key>`. Filesystem under the data directory on one machine, S3 in AWS. Objects
 * are streamed: no whole image is ever held in memory.
 */
export interface ArtifactStore {
  /** Writes a whole object atomically (a failed or interrupted write leaves no object). */
  put(key: string, body: Readable | Buffer | string, options?: { contentType?: string }): Promise<StoredObject>;
  get(key: string): Promise<Readable>;
  /** Undefined when there is no such object. */
  head(key: string): Promise<{ size: number; etag: string } | undefined>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<string[]>;
  /**
   * Moves the object at `from` (a staging key upload URLs write to) to `to` (a key no URL ever
   * writes to) and answers the store's own knowledge of the bytes now at `to`. What a URL writes
   * to `from` afterwards changes nothing at `to`. Undefined when there is no object at `from`.
   */
  promote(from: string, to: string): Promise<PromotedObject | undefined>;
  /** A URL that accepts a PUT of the object's bytes until `expiresInSeconds` (presigned S3, or an HMAC-signed local URL). */
  uploadUrl(key: string, expiresInSeconds: number): Promise<string>;
  /** A URL that serves the object's bytes until `expiresInSeconds`. */
  downloadUrl(key: string, expiresInSeconds: number): Promise<string>;
  /**
   * What the store measured when it wrote the object, only while the object is provably
   * unchanged since; undefined otherwise. Absent where a store keeps no such record (S3): the
   * caller then reads the bytes back to check them.
   */
  measured?(key: string): Promise<StoredObject | undefined>;
  /**
   * Removes every object under `prefix` (a directory prefix, ending in '/') in batches, and what
   * writers killed mid-write left there; answers how many objects were removed. Absent where a
   * store has no faster way than `list` and `delete` (the callers fall back to those).
   */
  deletePrefix?(prefix: string): Promise<number>;
  /**
   * The objects under `prefix` (a directory prefix, ending in '/') with when each was last
   * written, for sweeps that must leave recent objects alone. Absent where a store cannot say.
   */
  listModified?(prefix: string): Promise<Array<{ key: string; modified: Date }>>;
  /**
   * Removes what writers killed mid-write left under `prefix` (never an object). Only for a
   * prefix no one writes to any more. Absent where the store sweeps them itself (S3: the bucket's
   * lifecycle rule aborts incomplete multipart uploads).
   */
  discardIncomplete?(prefix: string): Promise<void>;

  /**
   * Multipart uploads (objects of any size the store allows, sent in parts, in parallel and
   * resumably). Absent where a store has none. Starts one for `key` (`size` bytes in all, so a
   * store can refuse what it cannot hold) and answers its upload id.
   */
  createMultipart?(key: string, size: number): Promise<string>;
  /** The smallest part the store takes (all but the last part); S3's is 5 MiB. */
  readonly minPartBytes?: number;
  /** A URL that accepts the PUT of one part whose bytes hash to `sha256` (hex), and nothing else. */
  multipartPartUrl?(key: string, uploadId: string, part: { number: number; sha256: string }, expiresInSeconds: number): Promise<MultipartPartUrl>;
  /** The parts received so far, in order; undefined when there is no such upload (completed, aborted, or never started). */
  listMultipartParts?(key: string, uploadId: string): Promise<MultipartPart[] | undefined>;
  /** Joins `parts` (as listMultipartParts answered them, in order) into the object at `key`. */
  completeMultipart?(key: string, uploadId: string, parts: MultipartPart[]): Promise<void>;
  /** Drops an upload and its parts (nothing at `key` changes). */
  abortMultipart?(key: string, uploadId: string): Promise<void>;
}
