import { IntegrityError, NotFoundError } from '../errors.ts';
import type { ImageLink, ImageManifest, ImageRecord } from '../model/image.ts';
import type { ImageDeps } from './image-deps.ts';
import { keyForLink, readManifest } from './manifest.ts';

/**
 * The artifact reference index, seen from the core: an image record's `artifact_keys` (what the
 * registry indexes) are the store keys it holds on to, set with its link. A delete releases
 * exactly those; no listing of other images or reading of their manifests.
 */

/** Every store key an image with this link holds on to: the manifest and the artifacts it lists. */
export function referencedKeys(link: ImageLink, manifest: ImageManifest | undefined): string[] {
  return [...new Set([keyForLink(link), ...(manifest?.artifacts ?? []).map((artifact) => keyForLink(artifact.link))])];
}

/** A manifest that is not valid references nothing this product can follow. */
export async function manifestOrNothing(deps: Pick<ImageDeps, 'artifacts'>, image: ImageRecord): Promise<ImageManifest | undefined> {
  try {
    return await readManifest(deps.artifacts, image);
  } catch (error) {
    if (error instanceof IntegrityError) return undefined;
    throw error;
  }
}

/**
 * Indexes, once per table, the records stored before the index was kept (no `artifact_keys`):
 * each gets the keys its link and manifest name today, through the registry (which writes their
 * references and, being rewritten, their name-index entry). Until it has run, no delete trusts
 * the index and no name listing trusts the name index; a run interrupted midway is resumed by
 * the next (records already indexed are skipped). Work in proportion to the number of images,
 * but only once: the first delete or listing after an upgrade pays it.
 */
export async function ensureReferenceIndex(deps: Pick<ImageDeps, 'images' | 'artifacts'>): Promise<void> {
  if (await deps.images.referencesIndexed()) return;
  for (const image of await deps.images.list({ includePending: true })) {
    if (image.artifact_keys !== undefined) continue;
    const keys = image.link ? referencedKeys(image.link, await manifestOrNothing(deps, image)) : [];
    try {
      await deps.images.update(image.id, (current) => (current.artifact_keys === undefined ? { ...current, artifact_keys: current.link ? keys : [] } : current));
    } catch (error) {
      // Deleted meanwhile: nothing left to index.
      if (!(error instanceof NotFoundError)) throw error;
    }
  }
  await deps.images.markReferencesIndexed();
}
