import { NotFoundError } from '../errors.ts';
import type { ImageManifest, ImageRecord } from '../model/image.ts';
import type { ImageDeps } from './image-deps.ts';
import { readManifest } from './manifest.ts';

/** One image record; NotFoundError (404) when missing. */
export async function getImage(deps: Pick<ImageDeps, 'images'>, id: string): Promise<ImageRecord> {
  const image = await deps.images.get(id);
  if (!image) throw new NotFoundError('image', id);
  return image;
}

/** All image records, ordered by id. */
export async function listImages(deps: Pick<ImageDeps, 'images'>): Promise<ImageRecord[]> {
  return deps.images.list();
}

/** The manifest of an image; NotFoundError when the image or its manifest does not exist. */
export async function getImageManifest(deps: Pick<ImageDeps, 'images' | 'artifacts'>, id: string): Promise<ImageManifest> {
  const manifest = await readManifest(deps.artifacts, await getImage(deps, id));
  if (!manifest) throw new NotFoundError('manifest of image', id);
  return manifest;
}
