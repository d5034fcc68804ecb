import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import type { ArtifactStore, MultipartPart } from '../../ports/artifact-store.ts';
import { bucketOf, DEFAULT_UPLOAD_URL_SECONDS, type ImageDeps } from './image-deps.ts';
import { uploadKey } from './manifest.ts';
import { parseInput } from './parse-input.ts';
import { ARTIFACT_NAMES, type ArtifactName } from './schemas.ts';

const MiB = 1024 * 1024;

/** S3's limits, which every store here keeps so a client works the same against both. */
export const MULTIPART_LIMITS = {
  maxParts: 10_000,
  maxPartBytes: 5 * 1024 ** 3,
  maxObjectBytes: 5 * 1024 ** 4,
  /** The part size when the client names none (raised for objects that would need more than maxParts). */
  defaultPartBytes: 16 * MiB,
  /** Part URLs one request hands out, so no answer lists thousands of URLs. */
  maxUrlsPerRequest: 100,
};

const SHA256 = z.string().regex(/^[a-f0-9]{64}$/, 'sha256 must be 64 lowercase hex digits');
const partNumber = z.number().int().min(1).max(MULTIPART_LIMITS.maxParts, `part numbers go from 1 to ${MULTIPART_LIMITS.maxParts}`);

export const multipartStartSchema = z.object({
  size: z.number().int().min(1, 'size must be at least 1 byte').max(MULTIPART_LIMITS.maxObjectBytes, `size must be at most ${MULTIPART_LIMITS.maxObjectBytes} bytes`),
  part_size: z.number().int().min(1).max(MULTIPART_LIMITS.maxPartBytes, `part_size must be at most ${MULTIPART_LIMITS.maxPartBytes} bytes`).optional(),
});

export const multipartPartUrlsSchema = z.object({
  parts: z
    .array(z.object({ number: partNumber, sha256: SHA256 }))
    .min(1, 'parts lists at least one part')
    .max(MULTIPART_LIMITS.maxUrlsPerRequest, `at most ${MULTIPART_LIMITS.maxUrlsPerRequest} parts per request`),
  expires_in: z.number().int().min(1).max(604_800).optional(),
});

export const multipartCompleteSchema = z.object({
  parts: z.array(z.object({ number: partNumber, sha256: SHA256 })).min(1, 'parts lists at least one part').max(MULTIPART_LIMITS.maxParts),
});

// S3's upload ids are opaque (letters, digits, '.', '_', '-'); the embedded store's are hex.
const UPLOAD_ID = /^[A-Za-z0-9._~-]{1,1024}$/;

const artifactNameSchema = z.enum(ARTIFACT_NAMES, { error: `artifact must be one of ${ARTIFACT_NAMES.join(', ')}` });

const receivedPartSchema = z.object({ number: z.number().int(), size: z.number().int(), sha256: z.string().optional() });

/** The answers of the multipart routes, as the API writes them (for the OpenAPI document). */
export const multipartResponseSchemas = {
  MultipartUpload: z.object({
    artifact: z.enum(ARTIFACT_NAMES),
    key: z.string(),
    upload_id: z.string(),
    size: z.number().int(),
    part_size: z.number().int(),
    part_count: z.number().int(),
  }),
  MultipartPartUrls: z.object({
    upload_id: z.string(),
    parts: z.array(
      z.object({
        number: z.number().int(),
        method: z.literal('PUT'),
        url: z.string(),
        headers: z.record(z.string(), z.string()).meta({ description: 'Headers the PUT must send as they are (x-amz-checksum-sha256).' }),
      }),
    ),
    expires_at: z.string(),
  }),
  MultipartParts: z.object({ upload_id: z.string(), key: z.string(), parts: z.array(receivedPartSchema) }),
  MultipartCompleted: z.object({ artifact: z.enum(ARTIFACT_NAMES), key: z.string(), size: z.number().int(), part_count: z.number().int() }),
};

/** What starting a multipart upload answers: where the parts go and how big each is. */
export interface MultipartUpload {
  artifact: ArtifactName;
  key: string;
  upload_id: string;
  size: number;
  part_size: number;
  part_count: number;
}

type MultipartStore = Required<Pick<ArtifactStore, 'createMultipart' | 'multipartPartUrl' | 'listMultipartParts' | 'completeMultipart' | 'abortMultipart'>> & ArtifactStore;

function multipartStore(deps: ImageDeps): MultipartStore {
  const store = deps.artifacts;
  if (!store.createMultipart || !store.multipartPartUrl || !store.listMultipartParts || !store.completeMultipart || !store.abortMultipart) {
    throw new ValidationError('this artifact store takes no multipart uploads; use upload-url');
  }
  return store as MultipartStore;
}

/** The staging key of an artifact of an image that has no manifest yet (registered images do not change: 409). */
async function stagingKey(deps: ImageDeps, id: string, artifact: string): Promise<{ name: ArtifactName; key: string }> {
  const name = parseInput(artifactNameSchema, artifact, 'artifact');
  const image = await deps.images.get(id);
  if (!image) throw new NotFoundError('image', id);
  if (image.link) throw new ConflictError(`image ${id} already has a manifest; registered images do not change`);
  return { name, key: uploadKey(bucketOf(deps), id, name) };
}

function checkUploadId(uploadId: string): string {
  if (!UPLOAD_ID.test(uploadId)) throw new ValidationError(`'${uploadId.slice(0, 80)}' is not an upload id`, 'upload_id');
  return uploadId;
}

async function receivedParts(store: MultipartStore, key: string, uploadId: string): Promise<MultipartPart[]> {
  const parts = await store.listMultipartParts(key, checkUploadId(uploadId));
  if (!parts) throw new NotFoundError('multipart upload', uploadId);
  return parts;
}

/**
 * Starts a multipart upload of one artifact to its staging key (where single upload URLs write
 * too; the manifest registration promotes and verifies it as any upload). The part size is the
 * client's (at least the store's minimum) or 16 MiB, raised so the object fits in 10,000 parts.
 */
export async function startMultipartUpload(deps: ImageDeps, id: string, artifact: string, body: unknown): Promise<MultipartUpload> {
  const store = multipartStore(deps);
  const request = parseInput(multipartStartSchema, body ?? {});
  const { name, key } = await stagingKey(deps, id, artifact);
  const minimum = store.minPartBytes ?? 5 * MiB;
  const needed = Math.ceil(request.size / MULTIPART_LIMITS.maxParts);
  const partSize = request.part_size ?? Math.max(MULTIPART_LIMITS.defaultPartBytes, Math.ceil(needed / MiB) * MiB);
  if (partSize < minimum && partSize < request.size) throw new ValidationError(`part_size must be at least ${minimum} bytes on this store`, 'part_size');
  const partCount = Math.ceil(request.size / partSize);
  if (partCount > MULTIPART_LIMITS.maxParts) {
    throw new ValidationError(`${request.size} bytes in parts of ${partSize} make ${partCount} parts; at most ${MULTIPART_LIMITS.maxParts}: use parts of at least ${needed} bytes`, 'part_size');
  }
  const uploadId = await store.createMultipart(key, request.size);
  return { artifact: name, key, upload_id: uploadId, size: request.size, part_size: partSize, part_count: partCount };
}

/**
 * URLs for parts of an upload, each bound to the part's sha256: the store refuses a part whose
 * bytes hash to anything else (S3 by the signed `x-amz-checksum-sha256` header, the embedded
 * store by its signed URL), so a part is checked where it lands.
 */
export async function multipartPartUrls(
  deps: ImageDeps,
  id: string,
  artifact: string,
  uploadId: string,
  body: unknown,
): Promise<{ upload_id: string; parts: Array<{ number: number; method: 'PUT'; url: string; headers: Record<string, string> }>; expires_at: string }> {
  const store = multipartStore(deps);
  const request = parseInput(multipartPartUrlsSchema, body);
  const { key } = await stagingKey(deps, id, artifact);
  checkUploadId(uploadId);
  const longest = deps.uploadUrlSeconds ?? DEFAULT_UPLOAD_URL_SECONDS;
  const seconds = Math.min(request.expires_in ?? longest, longest);
  const parts = [];
  for (const part of request.parts) parts.push({ ...(await store.multipartPartUrl(key, uploadId, part, seconds)), method: 'PUT' as const });
  return { upload_id: uploadId, parts, expires_at: new Date(deps.clock.now().getTime() + seconds * 1000).toISOString() };
}

/** The parts an upload has received (number, size, sha256): what a resumed upload need not send again. */
export async function listMultipartUpload(deps: ImageDeps, id: string, artifact: string, uploadId: string): Promise<{ upload_id: string; key: string; parts: MultipartPart[] }> {
  const store = multipartStore(deps);
  const { key } = await stagingKey(deps, id, artifact);
  const parts = await receivedParts(store, key, uploadId);
  return { upload_id: uploadId, key, parts: parts.map(({ number, size, sha256 }) => ({ number, size, ...(sha256 ? { sha256 } : {}) })) };
}

/**
 * Joins the received parts into the staging key, once they are exactly the parts the client
 * lists: numbers 1..N with none missing and none extra, each with the sha256 listed, every part
 * but the last the same size (at least the store's minimum) and the last no larger. Anything
 * else is a 400 naming the part, and nothing is joined.
 */
export async function completeMultipartUpload(
  deps: ImageDeps,
  id: string,
  artifact: string,
  uploadId: string,
  body: unknown,
): Promise<{ artifact: ArtifactName; key: string; size: number; part_count: number }> {
  const store = multipartStore(deps);
  const request = parseInput(multipartCompleteSchema, body);
  const { name, key } = await stagingKey(deps, id, artifact);
  const received = new Map((await receivedParts(store, key, uploadId)).map((part) => [part.number, part]));
  const joined: MultipartPart[] = [];
  for (const [index, declared] of request.parts.entries()) {
    const field = `parts[${index}]`;
    if (declared.number !== index + 1) throw new ValidationError(`parts must be listed in order from 1 with none left out: part ${index + 1} is not listed here`, field);
    const part = received.get(declared.number);
    if (!part) throw new ValidationError(`part ${declared.number} was not received; send it and complete again`, field);
    if (part.sha256 !== undefined && part.sha256 !== declared.sha256) {
      throw new ValidationError(`part ${declared.number} was received with sha256 ${part.sha256}, the completion lists ${declared.sha256}`, field);
    }
    joined.push(part);
  }
  const extra = [...received.keys()].filter((number) => number > joined.length).sort((a, b) => a - b);
  if (extra.length > 0) throw new ValidationError(`part ${extra[0]} was received but the completion lists only ${joined.length} parts`, 'parts');
  const partSize = joined[0]!.size;
  const minimum = store.minPartBytes ?? 5 * 1024 * 1024;
  for (const [index, part] of joined.entries()) {
    const last = index === joined.length - 1;
    if (!last && (part.size !== partSize || part.size < minimum)) {
      throw new ValidationError(`part ${part.number} holds ${part.size} bytes; every part but the last holds the same, at least ${minimum} bytes (part 1 holds ${partSize})`, `parts[${index}]`);
    }
    if (last && part.size > partSize) throw new ValidationError(`the last part (${part.number}) holds ${part.size} bytes, more than part 1's ${partSize}`, `parts[${index}]`);
  }
  await store.completeMultipart(key, uploadId, joined);
  return { artifact: name, key, size: joined.reduce((sum, part) => sum + part.size, 0), part_count: joined.length };
}

/** Drops an upload and its parts; the staging key is left as it is. */
export async function abortMultipartUpload(deps: ImageDeps, id: string, artifact: string, uploadId: string): Promise<void> {
  const store = multipartStore(deps);
  const { key } = await stagingKey(deps, id, artifact);
  await store.abortMultipart(key, checkUploadId(uploadId));
}
