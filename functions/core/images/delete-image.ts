import { InvalidStateError, NotFoundError } from '../errors.ts';
import type { SessionRecord } from '../model/session.ts';
import { ACTIVE_SESSIONS, sessionsWhereAny } from '../sessions/sessions-where.ts';
import { bucketOf, type ImageDeps } from './image-deps.ts';
import { ensureReferenceIndex } from './reference-index.ts';
import { releaseImageFromLayerCache } from '../layer-cache/retention.ts';

/** Whether a session names the image as a target (a group member or an image-map source). */
function targets(session: SessionRecord, imageId: string): boolean {
  return (
    session.target.groups.some((group) => group.members.includes(imageId)) ||
    session.target.image_map.some((entry) => entry.source_id === imageId)
  );
}

/**
 * Deletes an image record, then the bytes only it used. Refused (409) while a pending or
 * running session targets the image, unless `force`. Artifacts are shared when a customized
 * image reuses its source's kernel or initrd: the registry's artifact reference index answers,
 * per key, whether another image still references it (claimUnreferenced), so an object is
 * removed only when none does, and a registration racing the delete either keeps the object or
 * is refused. Everything else under `<bucket>/<id>/` (e.g. uploads never registered) goes too.
 * The work is the image's own keys, never the other images: no listing, no other manifest read.
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
  await ensureReferenceIndex(deps);
  // A record stored before the index got its keys just now.
  const held = (image.artifact_keys ?? (await deps.images.get(id, { includePending: true }))?.artifact_keys) ?? [];
  const own = new Set([...held, ...(await deps.artifacts.list(`${bucketOf(deps)}/${id}/`))]);

  // Before the record, so a failed delete is repeated whole: its pins (as a result), the cache entries built on it (as a source).
  await releaseImageFromLayerCache(deps, image);
  // The record (and with it its references) goes first: a failure after it leaves objects, never a record without bytes.
  await deps.images.delete(id);
  for (const key of own) {
    if (await deps.images.claimUnreferenced(key)) await deps.artifacts.delete(key);
  }
  // Multipart uploads never completed (their parts) and interrupted writes: S3's lifecycle rule aborts them, the filesystem store here.
  await deps.artifacts.discardIncomplete?.(`${bucketOf(deps)}/${id}/`);
}
