import { ConflictError, IntegrityError, NotFoundError, ValidationError } from '../errors.ts';
import type { ImageManifest, ImageRecord, ManifestArtifact } from '../model/image.ts';
import { bucketOf, type ImageDeps } from './image-deps.ts';
import { updateImageAndAnnounce } from './image-events.ts';
import { ARTIFACT_TYPES, artifactKey, findArtifact, keyForLink, linkForKey, manifestKey, readManifest, uploadKey } from './manifest.ts';
import { parseInput } from './parse-input.ts';
import { referencedKeys } from './reference-index.ts';
import { manifestRegistrationSchema, type ArtifactName } from './schemas.ts';
import { verifyStoredArtifact, type ExpectedChecksums } from './verify-artifact.ts';
import type { ArtifactStore, PromotedObject } from '../../ports/artifact-store.ts';

/** One artifact to list in a manifest: where its bytes are and what they hash to. */
export interface ArtifactToRegister {
  name: ArtifactName;
  /** The final key the manifest links (no URL writes there). */
  key: string;
  /** Where an upload URL put the bytes, promoted to `key` at registration. */
  staged?: string;
  size: number;
  md5: string;
  sha256: string;
}

/**
 * Checks the store's own account of promoted bytes against what the uploader declared: the size,
 * then each checksum the store measured (md5 from the filesystem record or S3's single-part
 * ETag, sha256 from the record or S3's full-object checksum). When the store measured neither,
 * the bytes at the final key (which no URL writes to) are read back and hashed.
 */
async function checkPromoted(artifacts: ArtifactStore, promoted: PromotedObject, declared: ExpectedChecksums): Promise<void> {
  const key = promoted.key;
  if (promoted.size !== declared.size) {
    throw new IntegrityError(`${key} holds ${promoted.size} bytes as uploaded, the manifest declares ${declared.size}; upload it again`);
  }
  for (const field of ['md5', 'sha256'] as const) {
    const measured = promoted[field];
    if (measured !== undefined && measured !== declared[field]) {
      throw new IntegrityError(`${key} ${field} of the uploaded bytes is ${measured} (measured by the store), the manifest declares ${declared[field]}; upload it again`);
    }
  }
  if (promoted.md5 === undefined && promoted.sha256 === undefined) await verifyStoredArtifact(artifacts, key, declared);
}

/**
 * Brings one artifact to its final key and checks it: a staged upload is promoted (a failed
 * check removes what was promoted, so nothing unverified stays under the final key); without one
 * (promoted by an earlier attempt, or written by the server itself) the object at the final key
 * is checked as stored. Answers the ETag the manifest's link carries.
 */
async function arrive(deps: ImageDeps, artifact: ArtifactToRegister, verified: boolean): Promise<string> {
  const promoted = artifact.staged ? await deps.artifacts.promote(artifact.staged, artifact.key) : undefined;
  if (promoted) {
    try {
      await checkPromoted(deps.artifacts, promoted, artifact);
    } catch (error) {
      await deps.artifacts.delete(artifact.key);
      throw error;
    }
    return promoted.etag;
  }
  // An import's bytes can be several GB: where the store vouches for the md5 (its ETag), the
  // API does not read them all again (in AWS that read would outlast API Gateway's 29 s).
  if (!verified) await verifyStoredArtifact(deps.artifacts, artifact.key, artifact, { acceptStoreMd5: true });
  const head = await deps.artifacts.head(artifact.key);
  if (!head) throw new IntegrityError(`${artifact.key} was not uploaded`);
  return head.etag;
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
 * registers the image and announces it the first time. Staged uploads are promoted to their
 * final keys first and the store's own measurement of them must match what was declared; unless
 * `verified` (the caller already checked the bytes), other artifacts are checked against their
 * size and checksums (the store's md5 ETag, or the bytes read and hashed), so no image is
 * registered before its bytes are verified. Safe to repeat: the same artifacts again return the image as it is; different ones
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

  const entries: ManifestArtifact[] = [];
  for (const artifact of artifacts) {
    const etag = await arrive(deps, artifact, options.verified === true);
    entries.push({
      link: linkForKey(artifact.key, etag),
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
      return { ...current, link, artifact_keys: referencedKeys(link, manifest) };
    },
    findArtifact(manifest, 'rootfs') !== undefined,
  );
}

/**
 * The API's form of registration: the body lists what the client uploaded to the image's own
 * upload URLs (staged at `<bucket>/<id>/uploads/<name>`) with the checksums it measured while
 * streaming; each is promoted to `<bucket>/<id>/<name>`. A mismatch with what the store measured
 * is the client's problem (400), naming the artifact.
 */
export async function registerUploadedArtifacts(deps: ImageDeps, id: string, body: unknown): Promise<ImageRecord> {
  const request = parseInput(manifestRegistrationSchema, body);
  const bucket = bucketOf(deps);
  const artifacts = request.artifacts.map((artifact) => ({ ...artifact, key: artifactKey(bucket, id, artifact.name), staged: uploadKey(bucket, id, artifact.name) }));
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
