import { IntegrityError, NotFoundError, ValidationError } from '../errors.ts';
import {
  BOOT_PARAMETERS_TYPE,
  INITRD_TYPE,
  KERNEL_TYPE,
  ROOTFS_TYPE,
  type ImageLink,
  type ImageManifest,
  type ImageRecord,
  type ManifestArtifact,
} from '../model/image.ts';
import type { ArtifactStore } from '../../ports/artifact-store.ts';
import { manifestSchema, type ArtifactName } from './schemas.ts';

/** The bucket IMS keeps image artifacts in; the embedded runtime uses it as the first key segment. */
export const DEFAULT_IMAGE_BUCKET = 'boot-images';

/** The IMS MIME type of each artifact name. */
export const ARTIFACT_TYPES: Record<ArtifactName, string> = {
  rootfs: ROOTFS_TYPE,
  kernel: KERNEL_TYPE,
  initrd: INITRD_TYPE,
  boot_parameters: BOOT_PARAMETERS_TYPE,
};

/** Manifests are a few hundred bytes; anything much larger is not a manifest. */
const MAX_MANIFEST_BYTES = 1 << 20;

/** `<bucket>/<image id>/<name>`: where an image's own artifact lives (IMS layout). */
export function artifactKey(bucket: string, imageId: string, name: ArtifactName | 'manifest.json'): string {
  return `${bucket}/${imageId}/${name}`;
}

/**
 * `<bucket>/<image id>/uploads/<name>`: where an upload URL writes an artifact. Registration
 * promotes it to `artifactKey`, which no URL ever writes to, so once an image is registered no
 * URL handed out before can change the bytes its manifest points at.
 */
export function uploadKey(bucket: string, imageId: string, name: ArtifactName): string {
  return `${bucket}/${imageId}/uploads/${name}`;
}

/** `<bucket>/<image id>/manifest.json`. */
export function manifestKey(bucket: string, imageId: string): string {
  return artifactKey(bucket, imageId, 'manifest.json');
}

/** An IMS link (`{path: "s3://<bucket>/<key>", type: "s3"}`) for a store key. */
export function linkForKey(key: string, etag?: string): ImageLink {
  return { path: `s3://${key}`, ...(etag ? { etag } : {}), type: 's3' };
}

/** The store key an IMS link points at; only `s3://` links name objects this product can read. */
export function keyForLink(link: ImageLink): string {
  const match = /^s3:\/\/(.+)$/.exec(link.path);
  if (!match?.[1]) throw new ValidationError(`link path '${link.path}' is not an s3:// path`, 'link.path');
  return match[1];
}

/** The manifest entry of a named artifact (matched by its IMS type), if the manifest lists one. */
export function findArtifact(manifest: ImageManifest | undefined, name: ArtifactName): ManifestArtifact | undefined {
  return manifest?.artifacts.find((artifact) => artifact.type === ARTIFACT_TYPES[name]);
}

/**
 * Reads and checks the manifest an image's `link` points at. Undefined when the image has no
 * link or the manifest object does not exist (yet); IntegrityError when it is not a valid
 * manifest. Used by the API, the delete rule, and the workflow's validate and stage steps.
 */
export async function readManifest(artifacts: ArtifactStore, image: ImageRecord): Promise<ImageManifest | undefined> {
  if (!image.link) return undefined;
  const key = keyForLink(image.link);
  let stream;
  try {
    stream = await artifacts.get(key);
  } catch (error) {
    if (error instanceof NotFoundError || (error as Error).name === 'NotFoundError') return undefined;
    throw error;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > MAX_MANIFEST_BYTES) {
      stream.destroy();
      throw new IntegrityError(`manifest ${image.link.path} of image ${image.id} is larger than ${MAX_MANIFEST_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new IntegrityError(`manifest ${image.link.path} of image ${image.id} is not JSON`);
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new IntegrityError(
      `manifest ${image.link.path} of image ${image.id} is not a valid IMS manifest: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
    );
  }
  return result.data;
}

/** Ready = the record exists with a manifest listing a rootfs: what a session needs to stage it. */
export function isImageReady(image: ImageRecord | undefined, manifest: ImageManifest | undefined): boolean {
  return image !== undefined && findArtifact(manifest, 'rootfs') !== undefined;
}
