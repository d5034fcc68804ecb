import { IntegrityError, InvalidStateError, NotFoundError } from '../errors.ts';
import type { ImageManifest, ImageRecord } from '../model/image.ts';
import type { SessionRecord } from '../model/session.ts';
import { ACTIVE_SESSIONS, sessionsWhereAny } from '../sessions/sessions-where.ts';
import { bucketOf, type ImageDeps } from './image-deps.ts';
import { keyForLink, readManifest } from './manifest.ts';

/** Whether a session names the image as a target (a group member or an image-map source). */
function targets(session: SessionRecord, imageId: string): boolean {
  return (
    session.target.groups.some((group) => group.members.includes(imageId)) ||
    session.target.image_map.some((entry) => entry.source_id === imageId)
  );
}

/** A manifest that is not valid references nothing this product can follow. */
async function manifestOrNothing(deps: ImageDeps, image: ImageRecord): Promise<ImageManifest | undefined> {
  try {
    return await readManifest(deps.artifacts, image);
  } catch (error) {
    if (error instanceof IntegrityError) return undefined;
    throw error;
  }
}

/** Every store key an image holds on: its manifest and the artifacts the manifest lists. */
function keysOf(image: ImageRecord, manifest: ImageManifest | undefined): string[] {
  if (!image.link) return [];
  return [keyForLink(image.link), ...(manifest?.artifacts ?? []).map((artifact) => keyForLink(artifact.link))];
}

/**
 * Deletes an image record, then the bytes only it used. Refused (409) while a pending or
 * running session targets the image, unless `force`. Artifacts are shared when a customized
 * image reuses its source's kernel or initrd, so an object is removed only when no other
 * image's manifest points at it; everything else under `<bucket>/<id>/` (e.g. uploads never
 * registered) goes too. Other manifests are read before anything changes, so a read failure
 * leaves the image as it was.
 */
export async function deleteImage(deps: ImageDeps, id: string, options: { force?: boolean } = {}): Promise<void> {
  const image = await deps.images.get(id);
  if (!image) throw new NotFoundError('image', id);
  if (!options.force) {
    const blocking = (await sessionsWhereAny(deps.sessions, ACTIVE_SESSIONS)).filter((session) => targets(session, id)).map((session) => session.name);
    if (blocking.length > 0) {
      throw new InvalidStateError(
        `image ${id} is a target of pending or running session(s) ${blocking.join(', ')}; wait for them to finish or delete with force`,
      );
    }
  }

  const own = new Set([...keysOf(image, await manifestOrNothing(deps, image)), ...(await deps.artifacts.list(`${bucketOf(deps)}/${id}/`))]);
  const referenced = new Set<string>();
  // Results still pending their session's completion hold on to the kernels they share too.
  for (const other of await deps.images.list({ includePending: true })) {
    if (other.id === id) continue;
    for (const key of keysOf(other, await manifestOrNothing(deps, other))) referenced.add(key);
  }

  await deps.images.delete(id);
  for (const key of own) {
    if (!referenced.has(key)) await deps.artifacts.delete(key);
  }
}
