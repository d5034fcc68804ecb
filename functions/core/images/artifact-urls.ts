import { ConflictError, NotFoundError } from '../errors.ts';
import type { ImageRecord } from '../model/image.ts';
import { bucketOf, DEFAULT_UPLOAD_URL_SECONDS, type ImageDeps } from './image-deps.ts';
import { findArtifact, keyForLink, readManifest, uploadKey } from './manifest.ts';
import { parseInput } from './parse-input.ts';
import { ARTIFACT_NAMES, artifactUrlRequestSchema, uploadUrlRequestSchema, type ArtifactName } from './schemas.ts';
import { z } from 'zod';

/** A URL to PUT one artifact's bytes to, straight into the artifact store. */
export interface UploadUrl {
  artifact: ArtifactName;
  key: string;
  method: 'PUT';
  url: string;
  expires_at: string;
}

/** A URL to GET one artifact's bytes from, with what they must hash to. */
export interface DownloadUrl {
  artifact: ArtifactName;
  key: string;
  method: 'GET';
  url: string;
  expires_at: string;
  type: string;
  size: number;
  md5: string;
  sha256: string;
}

const artifactNameSchema = z.enum(ARTIFACT_NAMES, { error: `artifact must be one of ${ARTIFACT_NAMES.join(', ')}` });

async function existingImage(deps: ImageDeps, id: string): Promise<ImageRecord> {
  const image = await deps.images.get(id);
  if (!image) throw new NotFoundError('image', id);
  return image;
}

/**
 * Hands out an upload URL for one artifact of an image that has no manifest yet: bytes travel
 * by URL (presigned S3 in AWS, the embedded server's signed endpoint on one machine), never
 * through the API's body, which API Gateway caps at 10 MB. The URL writes to the artifact's
 * staging key (`uploadKey`), which registration promotes; it lasts at most the deployment's
 * upload URL lifetime.
 */
export async function artifactUploadUrl(deps: ImageDeps, id: string, artifact: string, body: unknown): Promise<UploadUrl> {
  const name = parseInput(artifactNameSchema, artifact, 'artifact');
  const { expires_in } = parseInput(uploadUrlRequestSchema, body ?? {});
  const longest = deps.uploadUrlSeconds ?? DEFAULT_UPLOAD_URL_SECONDS;
  const seconds = Math.min(expires_in ?? longest, longest);
  const image = await existingImage(deps, id);
  if (image.link) throw new ConflictError(`image ${id} already has a manifest; registered images do not change`);
  const key = uploadKey(bucketOf(deps), id, name);
  return {
    artifact: name,
    key,
    method: 'PUT',
    url: await deps.artifacts.uploadUrl(key, seconds),
    expires_at: new Date(deps.clock.now().getTime() + seconds * 1000).toISOString(),
  };
}

/** Hands out a download URL for an artifact the image's manifest lists, with its size and checksums. */
export async function artifactDownloadUrl(deps: ImageDeps, id: string, artifact: string, body: unknown): Promise<DownloadUrl> {
  const name = parseInput(artifactNameSchema, artifact, 'artifact');
  const { expires_in } = parseInput(artifactUrlRequestSchema, body ?? {});
  const image = await existingImage(deps, id);
  const listed = findArtifact(await readManifest(deps.artifacts, image), name);
  if (!listed) throw new NotFoundError(`${name} artifact of image`, id);
  const key = keyForLink(listed.link);
  return {
    artifact: name,
    key,
    method: 'GET',
    url: await deps.artifacts.downloadUrl(key, expires_in),
    expires_at: new Date(deps.clock.now().getTime() + expires_in * 1000).toISOString(),
    type: listed.type,
    size: listed.size,
    md5: listed.md5,
    sha256: listed.sha256,
  };
}
