import { ROOTFS_TYPE, type ImageManifest, type ImageRecord, type ManifestArtifact } from '../core/model/image.ts';
import { imageKeys } from './session-keys.ts';
import type { StepPorts } from './step-ports.ts';

async function readJson(stream: NodeJS.ReadableStream): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** The image and its manifest when the image is ready (registered with a rootfs), else undefined. */
export async function readReadyManifest(
  ports: Pick<StepPorts, 'images' | 'artifacts'>,
  imageId: string,
): Promise<{ image: ImageRecord; manifest: ImageManifest; rootfs: ManifestArtifact } | undefined> {
  const image = await ports.images.get(imageId);
  if (!image?.link?.path) return undefined;
  const key = imageKeys.keyOfLink(image.link.path);
  if (!(await ports.artifacts.head(key))) return undefined;
  const manifest = (await readJson(await ports.artifacts.get(key))) as ImageManifest;
  const rootfs = manifest.artifacts?.find((a) => a.type === ROOTFS_TYPE);
  return rootfs ? { image, manifest, rootfs } : undefined;
}
