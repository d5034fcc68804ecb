import { ConflictError, IntegrityError, NotFoundError, ValidationError } from '../errors.ts';
import type { ImageManifest, ImageRecord, ManifestArtifact } from '../model/image.ts';
import { bucketOf, type ImageDeps } from './image-deps.ts';
import { updateImageAndAnnounce } from './image-events.ts';
import { ARTIFACT_TYPES, artifactKey, findArtifact, keyForLink, linkForKey, manifestKey, readManifest } from './manifest.ts';
import { parseInput } from './parse-input.ts';
import { manifestRegistrationSchema, type ArtifactName } from './schemas.ts';
import { verifyStoredArtifact } from './verify-artifact.ts';

/** One artifact to list in a manifest: where its bytes are and what they hash to. */
export interface ArtifactToRegister {
  name: ArtifactName;
  key: string;
  size: number;
  md5: string;
  sha256: string;
}

function sameArtifacts(manifest: ImageManifest, artifacts: ArtifactToRegister[]): boolean {
  return (
    manifest.artifacts.length === artifacts.length &&
    artifacts.every((artifact) => {
      const listed = findArtifact(manifest, artifact.name);
      return listed !== undefined && keyForLink(listed.link) === artifact.key && listed.sha256 === artifact.sha256 && listed.size === artifact.size;
    })
  );
}

/**
 * Writes an image's IMS `manifest.json` (`<bucket>/<id>/manifest.json`) listing the given
 * artifacts with link, md5 and sha256, and links the image to it; a manifest with a rootfs
 * registers the image and announces it the first time. Unless `verified` (the caller already
 * checked the bytes), each artifact is checked against its size and checksums first (the store's
 * md5 ETag, or the bytes read and hashed), so no image is registered before its bytes are
 * verified. Safe to repeat: the same artifacts again return the image as it is; different ones
 * are a conflict (registered images do not change).
 */
export async function registerManifest(
  deps: ImageDeps,
  id: string,
  artifacts: ArtifactToRegister[],
  options: { verified?: boolean } = {},
): Promise<ImageRecord> {
  const image = await deps.images.get(id);
  if (!image) throw new NotFoundError('image', id);
  if (image.link) {
    const existing = await readManifest(deps.artifacts, image);
    if (existing && sameArtifacts(existing, artifacts)) {
      // A retry after a failed announcement announces now; otherwise there is nothing to do.
      const unannounced = !image.rootfs_registered && findArtifact(existing, 'rootfs') !== undefined;
      return unannounced ? updateImageAndAnnounce(deps, id, (current) => current, true) : image;
    }
    throw new ConflictError(`image ${id} already has a manifest (${image.link.path}); registered images do not change`);
  }

  if (!options.verified) {
    // An import's bytes can be several GB: where the store vouches for the md5 (its ETag), the
    // API does not read them all again (in AWS that read would outlast API Gateway's 29 s).
    for (const artifact of artifacts) await verifyStoredArtifact(deps.artifacts, artifact.key, artifact, { acceptStoreMd5: true });
  }
  const entries: ManifestArtifact[] = [];
  for (const artifact of artifacts) {
    const head = await deps.artifacts.head(artifact.key);
    if (!head) throw new IntegrityError(`${artifact.key} was not uploaded`);
    entries.push({
      link: linkForKey(artifact.key, head.etag),
      type: ARTIFACT_TYPES[artifact.name],
      md5: artifact.md5,
      sha256: artifact.sha256,
      size: artifact.size,
    });
  }
  const manifest: ImageManifest = { version: '1.0', created: deps.clock.now().toISOString(), artifacts: entries };
  const key = manifestKey(bucketOf(deps), id);
  const stored = await deps.artifacts.put(key, JSON.stringify(manifest, null, 2), { contentType: 'application/json' });
  const link = linkForKey(key, stored.etag);
  return updateImageAndAnnounce(
    deps,
    id,
    (current) => {
      if (current.link && current.link.path !== link.path) {
        throw new ConflictError(`image ${id} was linked to ${current.link.path} meanwhile; registered images do not change`);
      }
      return { ...current, link };
    },
    findArtifact(manifest, 'rootfs') !== undefined,
  );
}

/**
 * The API's form of registration: the body lists what the client uploaded to the image's own
 * upload URLs (`<bucket>/<id>/<name>`) with the checksums it measured while streaming. A
 * mismatch with the stored bytes is the client's problem (400), naming the artifact.
 */
export async function registerUploadedArtifacts(deps: ImageDeps, id: string, body: unknown): Promise<ImageRecord> {
  const request = parseInput(manifestRegistrationSchema, body);
  const artifacts = request.artifacts.map((artifact) => ({ ...artifact, key: artifactKey(bucketOf(deps), id, artifact.name) }));
  try {
    return await registerManifest(deps, id, artifacts);
  } catch (error) {
    if (error instanceof IntegrityError) {
      const index = artifacts.findIndex((artifact) => error.message.startsWith(artifact.key));
      throw new ValidationError(error.message, index >= 0 ? `artifacts[${index}]` : 'artifacts');
    }
    throw error;
  }
}
