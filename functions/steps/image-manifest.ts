import { findArtifact, readManifest } from '../core/images/manifest.ts';
import type { ImageManifest, ImageRecord, ManifestArtifact } from '../core/model/image.ts';
import type { StepPorts } from './step-ports.ts';

/** The image and its manifest when the image is ready (registered with a rootfs), else undefined. */
export async function readReadyManifest(
  ports: Pick<StepPorts, 'images' | 'artifacts'>,
  imageId: string,
): Promise<{ image: ImageRecord; manifest: ImageManifest; rootfs: ManifestArtifact } | undefined> {
  const image = await ports.images.get(imageId);
  if (!image) return undefined;
  const manifest = await readManifest(ports.artifacts, image);
  const rootfs = findArtifact(manifest, 'rootfs');
  return manifest && rootfs ? { image, manifest, rootfs } : undefined;
}
