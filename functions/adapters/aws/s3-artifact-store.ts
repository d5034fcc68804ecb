import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NotFoundError, ValidationError } from '../../core/errors.ts';
import type { ArtifactStore, MultipartPart, MultipartPartUrl, PromotedObject, StoredObject } from '../../ports/artifact-store.ts';
import { measuringStream, toReadable } from '../shared/measuring-stream.ts';
import { rethrowSdkError } from './sdk-errors.ts';

export interface S3ArtifactStoreOptions {
  /** Bytes per multipart part (S3's minimum is 5 MiB); memory use is about partSize x queueSize. */
  partSize?: number;
  /** Parts uploaded at once. */
  queueSize?: number;
  /**
   * One S3 bucket that holds every key: a key's first segment (the IMS bucket name, e.g.
   * `boot-images`, or `sessions`) becomes the first segment of the object key inside it. A
   * deployment needs this because S3 bucket names are global and names like `boot-images` are
   * taken; without it the first segment is the S3 bucket itself (a private S3 endpoint).
   */
  bucket?: string;
  /**
   * A key prefix inside `bucket` (`s3://BUCKET/prefix`: a site's bucket shared with other
   * uses): a store key `k` is the object `<prefix>/k`, and listings give store keys back.
   */
  prefix?: string;
  /** Objects listed and deleted per request by deletePrefix (S3 takes at most 1000 in one DeleteObjects). */
  deleteBatchSize?: number;
}

const TRANSIENT = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'ThrottlingException',
  'TimeoutError',
]);

/** The largest object one CopyObject copies; larger ones are copied in parts (UploadPartCopy). */
const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;
/** The part size of a multipart copy (S3 copies these inside the bucket; 10,000 of them reach 5 TiB). */
const COPY_PART_BYTES = 1024 ** 3;

function isNoSuchUpload(error: unknown): boolean {
  const e = error as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchUpload' || e.Code === 'NoSuchUpload' || e.$metadata?.httpStatusCode === 404;
}

const hexOf = (base64: string | undefined) => (base64 && !base64.includes('-') ? Buffer.from(base64, 'base64').toString('hex') : undefined);

function isMissing(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** Throttling, 5xx and dropped connections become TransientError (retried by callers and the state machine). */
function translate(error: unknown, what: string): never {
  return rethrowSdkError(error, TRANSIENT, 'artifact store', what);
}

/** `bucket/path` -> S3 Bucket and Key. */
export function splitKey(key: string): { Bucket: string; Key: string } {
  const slash = key.indexOf('/');
  if (slash <= 0 || slash === key.length - 1) throw new ValidationError(`artifact key '${key}' is not <bucket>/<path>`, 'key');
  return { Bucket: key.slice(0, slash), Key: key.slice(slash + 1) };
}

/**
 * The artifact store on S3 (AWS, or any S3-protocol endpoint). Writes stream through a
 * multipart upload (lib-storage) while md5 and sha256 are computed in the same pass, so no
 * image is ever held whole in memory; a failed or interrupted write aborts the multipart upload
 * and leaves no object. Upload and download URLs are presigned.
 */
export class S3ArtifactStore implements ArtifactStore {
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly bucket: string | undefined;
  /** `<prefix>/` or empty (see `prefix`). */
  private readonly keyPrefix: string;
  private readonly deleteBatchSize: number;

  constructor(
    private readonly client: S3Client,
    options: S3ArtifactStoreOptions = {},
  ) {
    this.partSize = options.partSize ?? 16 * 1024 * 1024;
    this.queueSize = options.queueSize ?? 4;
    this.bucket = options.bucket;
    const prefix = options.prefix?.replace(/^\/+|\/+$/g, '') ?? '';
    if (prefix && !this.bucket) throw new ValidationError('a key prefix needs the one bucket that holds every key', 'prefix');
    this.keyPrefix = prefix ? `${prefix}/` : '';
    this.deleteBatchSize = Math.min(1000, Math.max(1, options.deleteBatchSize ?? 1000));
  }

  /** Where a store key lives in S3 (see `bucket`). */
  private locate(key: string): { Bucket: string; Key: string } {
    const target = splitKey(key);
    return this.bucket ? { Bucket: this.bucket, Key: `${this.keyPrefix}${key}` } : target;
  }

  async put(key: string, body: Readable | Buffer | string, options: { contentType?: string } = {}): Promise<StoredObject> {
    const target = this.locate(key);
    const measure = measuringStream();
    const source = toReadable(body);
    const measured = new PassThrough({ highWaterMark: 1 << 20 });
    const upload = new Upload({
      client: this.client,
      params: { ...target, Body: measured, ...(options.contentType ? { ContentType: options.contentType } : {}) },
      partSize: this.partSize,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    // A failing source destroys `measured` with its error, which fails the upload and aborts the
    // multipart upload before done() settles; a failing upload stops reading the source.
    let sourceError: unknown;
    const feeding = pipeline(source, measure.stream, measured).catch((error: unknown) => {
      sourceError = error;
      throw error;
    });
    let result;
    try {
      [result] = await Promise.all([upload.done(), feeding]);
    } catch (error) {
      source.destroy();
      measured.destroy();
      translate(sourceError ?? error, `writing ${key}`);
    }
    const { size, md5, sha256 } = measure.result();
    return { key, size, md5, sha256, etag: (result?.ETag ?? md5).replace(/"/g, '') };
  }

  async get(key: string): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand(this.locate(key)));
      return out.Body as Readable;
    } catch (error) {
      if (isMissing(error)) throw new NotFoundError('artifact', key);
      translate(error, `reading ${key}`);
    }
  }

  async head(key: string): Promise<{ size: number; etag: string } | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand(this.locate(key)));
      return { size: out.ContentLength ?? 0, etag: (out.ETag ?? '').replace(/"/g, '') };
    } catch (error) {
      if (isMissing(error)) return undefined;
      translate(error, `looking up ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand(this.locate(key)));
    } catch (error) {
      if (!isMissing(error)) translate(error, `deleting ${key}`);
    }
  }

  /** Where a store prefix lists in S3 (its bucket and object key prefix), and how an object key reads back as a store key. */
  private scope(prefix: string): { bucket: string; keyPrefix: string | undefined; storeKey: (objectKey: string) => string } {
    const slash = prefix.indexOf('/');
    // In one bucket the whole prefix is an object key prefix and object keys are store keys.
    const bucket = this.bucket ?? (slash < 0 ? prefix : prefix.slice(0, slash));
    const keyPrefix = this.bucket ? `${this.keyPrefix}${slash < 0 ? `${prefix}/` : prefix}` : slash < 0 ? '' : prefix.slice(slash + 1);
    const storeKey = (objectKey: string) => (this.bucket ? objectKey.slice(this.keyPrefix.length) : `${bucket}/${objectKey}`);
    return { bucket, keyPrefix: keyPrefix || undefined, storeKey };
  }

  /** Every page of objects under a prefix, as S3 lists them. */
  private async *pages(prefix: string): AsyncGenerator<Array<{ Key: string; LastModified?: Date }>> {
    const { bucket, keyPrefix } = this.scope(prefix);
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: keyPrefix, ContinuationToken: token }));
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchBucket') return;
        translate(error, `listing ${prefix}`);
      }
      yield (out.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key, LastModified: object.LastModified }] : []));
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  /** Keys starting with `prefix`; the prefix names its bucket (`bucket/` or `bucket/path-prefix`). */
  async list(prefix: string): Promise<string[]> {
    const { storeKey } = this.scope(prefix);
    const keys: string[] = [];
    for await (const page of this.pages(prefix)) for (const object of page) keys.push(storeKey(object.Key));
    return keys.sort();
  }

  async listModified(prefix: string): Promise<Array<{ key: string; modified: Date }>> {
    const { storeKey } = this.scope(prefix);
    const found: Array<{ key: string; modified: Date }> = [];
    for await (const page of this.pages(prefix)) for (const object of page) found.push({ key: storeKey(object.Key), modified: object.LastModified ?? new Date() });
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Removes every object under a directory prefix: each listed page (up to 1000 keys) goes in one
   * DeleteObjects request. Pages are listed with ListObjects' `Marker` (the last key deleted), a
   * position that stays valid while the objects before it go; a V2 continuation token names a
   * place among objects that are gone by then (and s3rver cannot make one on Node 24). In a
   * versioned bucket this leaves delete markers and noncurrent versions, which the bucket's
   * lifecycle rule expires. A key S3 refuses to delete fails the whole call, naming it (a retry
   * repeats it all: deleting twice is harmless).
   */
  async deletePrefix(prefix: string): Promise<number> {
    if (!prefix.endsWith('/')) throw new ValidationError(`a directory prefix ends in '/', not '${prefix}'`, 'prefix');
    const { bucket, keyPrefix } = this.scope(prefix);
    let removed = 0;
    let marker: string | undefined;
    for (;;) {
      let listed;
      try {
        listed = await this.client.send(new ListObjectsCommand({ Bucket: bucket, Prefix: keyPrefix, Marker: marker, MaxKeys: this.deleteBatchSize }));
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchBucket') return removed;
        translate(error, `listing ${prefix}`);
      }
      const keys = (listed.Contents ?? []).flatMap((object) => (object.Key ? [object.Key] : []));
      if (keys.length === 0) return removed;
      let out;
      try {
        out = await this.client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
      } catch (error) {
        translate(error, `deleting under ${prefix}`);
      }
      const refused = out.Errors ?? [];
      if (refused.length > 0) {
        const first = refused[0]!;
        throw new Error(`the artifact store refused to delete ${refused.length} object(s) under ${prefix}, first ${first.Key}: ${first.Code ?? 'error'} ${first.Message ?? ''}`.trim());
      }
      removed += keys.length;
      if (!listed.IsTruncated) return removed;
      marker = keys[keys.length - 1];
    }
  }

  /**
   * Copies a staged upload to its final key (CopyObject, up to 5 GB: what one presigned PUT can
   * upload) asking S3 for a full-object SHA-256 of the copy, then deletes the staged object.
   * The copy is one version of the source, so a PUT through an old upload URL afterwards only
   * makes a new staged object. S3 makes a single-part copy's ETag the md5 of its bytes (SSE-S3 or
   * none); an ETag of another form, or no checksum (S3-protocol servers without checksums), is
   * left out and the caller reads the final object back.
   */
  async promote(from: string, to: string): Promise<PromotedObject | undefined> {
    const source = this.locate(from);
    const target = this.locate(to);
    try {
      const staged = await this.head(from);
      if (!staged) return undefined;
      if (staged.size > MAX_SINGLE_COPY_BYTES) await this.copyInParts(from, to, staged.size);
      else {
        await this.client.send(
          new CopyObjectCommand({ ...target, CopySource: encodeURI(`${source.Bucket}/${source.Key}`), ChecksumAlgorithm: 'SHA256', MetadataDirective: 'COPY' }),
        );
      }
    } catch (error) {
      if (isMissing(error)) return undefined;
      translate(error, `promoting ${from} to ${to}`);
    }
    await this.delete(from);
    let head;
    try {
      head = await this.client.send(new HeadObjectCommand({ ...target, ChecksumMode: 'ENABLED' }));
    } catch (error) {
      translate(error, `looking up ${to}`);
    }
    const etag = (head.ETag ?? '').replace(/"/g, '');
    const sha256 = head.ChecksumSHA256 && !head.ChecksumSHA256.includes('-') ? Buffer.from(head.ChecksumSHA256, 'base64').toString('hex') : undefined;
    return {
      key: to,
      size: head.ContentLength ?? 0,
      etag,
      ...(/^[a-f0-9]{32}$/.test(etag) ? { md5: etag } : {}),
      ...(sha256?.length === 64 ? { sha256 } : {}),
    };
  }

  /**
   * Copies an object over 5 GB (what CopyObject cannot) with a multipart copy inside S3, parts of
   * 1 GiB, `queueSize` at a time; a failure aborts the copy and leaves nothing at `to`.
   */
  private async copyInParts(from: string, to: string, size: number): Promise<void> {
    const source = this.locate(from);
    const target = this.locate(to);
    const created = await this.client.send(new CreateMultipartUploadCommand({ ...target, ChecksumAlgorithm: 'SHA256' }));
    const uploadId = created.UploadId!;
    try {
      const count = Math.ceil(size / COPY_PART_BYTES);
      const parts: Array<{ PartNumber: number; ETag?: string; ChecksumSHA256?: string }> = [];
      let next = 1;
      const worker = async () => {
        for (let number = next++; number <= count; number = next++) {
          const start = (number - 1) * COPY_PART_BYTES;
          const end = Math.min(size, start + COPY_PART_BYTES) - 1;
          const out = await this.client.send(
            new UploadPartCopyCommand({ ...target, UploadId: uploadId, PartNumber: number, CopySource: encodeURI(`${source.Bucket}/${source.Key}`), CopySourceRange: `bytes=${start}-${end}` }),
          );
          parts.push({ PartNumber: number, ETag: out.CopyPartResult?.ETag, ChecksumSHA256: out.CopyPartResult?.ChecksumSHA256 });
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.queueSize, count) }, worker));
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      await this.client.send(new CompleteMultipartUploadCommand({ ...target, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    } catch (error) {
      await this.client.send(new AbortMultipartUploadCommand({ ...target, UploadId: uploadId })).catch(() => undefined);
      throw error;
    }
  }

  /** S3's minimum part size (all but the last part). */
  readonly minPartBytes = 5 * 1024 * 1024;

  /** CreateMultipartUpload with SHA-256 part checksums: S3 then checks each part's bytes against the checksum its URL signs. */
  async createMultipart(key: string): Promise<string> {
    try {
      const out = await this.client.send(new CreateMultipartUploadCommand({ ...this.locate(key), ChecksumAlgorithm: 'SHA256' }));
      if (!out.UploadId) throw new Error(`S3 answered no upload id for ${key}`);
      return out.UploadId;
    } catch (error) {
      translate(error, `starting a multipart upload of ${key}`);
    }
  }

  /**
   * A presigned UploadPart whose `x-amz-checksum-sha256` header is signed in (not hoisted into
   * the query): the PUT must send that header, and S3 refuses a part whose bytes hash otherwise.
   */
  async multipartPartUrl(key: string, uploadId: string, part: { number: number; sha256: string }, expiresInSeconds: number): Promise<MultipartPartUrl> {
    const checksum = Buffer.from(part.sha256, 'hex').toString('base64');
    const command = new UploadPartCommand({ ...this.locate(key), UploadId: uploadId, PartNumber: part.number, ChecksumSHA256: checksum });
    const url = await getSignedUrl(this.client, command, {
      expiresIn: expiresInSeconds,
      signableHeaders: new Set(['x-amz-checksum-sha256']),
      unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
    });
    return { number: part.number, url, headers: { 'x-amz-checksum-sha256': checksum } };
  }

  async listMultipartParts(key: string, uploadId: string): Promise<MultipartPart[] | undefined> {
    const parts: MultipartPart[] = [];
    let marker: string | undefined;
    for (;;) {
      let out;
      try {
        out = await this.client.send(new ListPartsCommand({ ...this.locate(key), UploadId: uploadId, PartNumberMarker: marker }));
      } catch (error) {
        if (isNoSuchUpload(error)) return undefined;
        translate(error, `listing the parts of ${key}`);
      }
      for (const part of out.Parts ?? []) {
        const sha256 = hexOf(part.ChecksumSHA256);
        parts.push({ number: part.PartNumber ?? 0, size: part.Size ?? 0, etag: part.ETag, ...(sha256 ? { sha256 } : {}) });
      }
      if (!out.IsTruncated || !out.NextPartNumberMarker) return parts.sort((a, b) => a.number - b.number);
      marker = out.NextPartNumberMarker;
    }
  }

  async completeMultipart(key: string, uploadId: string, parts: MultipartPart[]): Promise<void> {
    const Parts = parts.map((part) => ({
      PartNumber: part.number,
      ETag: part.etag,
      ...(part.sha256 ? { ChecksumSHA256: Buffer.from(part.sha256, 'hex').toString('base64') } : {}),
    }));
    try {
      await this.client.send(new CompleteMultipartUploadCommand({ ...this.locate(key), UploadId: uploadId, MultipartUpload: { Parts } }));
    } catch (error) {
      translate(error, `completing the multipart upload of ${key}`);
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ ...this.locate(key), UploadId: uploadId }));
    } catch (error) {
      if (!isNoSuchUpload(error)) translate(error, `aborting the multipart upload of ${key}`);
    }
  }

  async uploadUrl(key: string, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new PutObjectCommand(this.locate(key)), { expiresIn: expiresInSeconds });
  }

  async downloadUrl(key: string, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand(this.locate(key)), { expiresIn: expiresInSeconds });
  }
}
