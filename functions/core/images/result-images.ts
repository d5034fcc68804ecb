import { ConflictError, ValidationError } from '../errors.ts';
import type { ImageRecord } from '../model/image.ts';
import type { ImageDeps } from './image-deps.ts';
import { updateImageAndAnnounce } from './image-events.ts';
import { isImageReady } from './manifest.ts';
import { manifestForLink } from './create-image.ts';
import { z } from 'zod';
import { stringMap } from '../model/string-map.ts';
import { parseInput } from './parse-input.ts';
import { referencedKeys } from './reference-index.ts';
import { imageArchSchema, imageLinkSchema, imageNameSchema } from './schemas.ts';

/** A result the workflow registers: a name, an arch, its manifest link, and the lineage (`cfs_*`) only the workflow may write. */
const resultImageSchema = z.object({
  name: imageNameSchema,
  arch: imageArchSchema.default('x86_64'),
  link: imageLinkSchema,
  metadata: z.record(z.string(), z.string()).default({}),
});

/**
 * Writes a session's result image record hidden (`pending_session`): its bytes are verified and
 * its manifest written, but no reader lists, gets or starts from it, and nothing is announced,
 * until the session completes and `revealResultImages` shows it. Safe to repeat: a record this
 * session already prepared (or revealed) is returned as it is; one that belongs to anything else
 * is a conflict.
 */
export async function prepareResultImage(deps: ImageDeps, input: unknown, options: { id: string; session: string }): Promise<ImageRecord> {
  const request = parseInput(resultImageSchema, input);
  const manifest = await manifestForLink(deps, options.id, request.link);
  if (!isImageReady({ id: options.id } as ImageRecord, manifest)) {
    throw new ValidationError(`result image ${options.id} needs a manifest listing a rootfs before it is prepared`, 'link');
  }
  const existing = await deps.images.get(options.id, { includePending: true });
  if (existing) return ownResult(existing, options.session);
  const record: ImageRecord = {
    id: options.id,
    name: request.name,
    created: deps.clock.now().toISOString(),
    arch: request.arch,
    link: request.link,
    artifact_keys: referencedKeys(request.link, manifest),
    metadata: stringMap(Object.entries(request.metadata)),
    pending_session: options.session,
  };
  try {
    await deps.images.create(record);
  } catch (error) {
    // A concurrent retry of the same step created it first.
    const raced = error instanceof ConflictError ? await deps.images.get(options.id, { includePending: true }) : undefined;
    if (raced) return ownResult(raced, options.session);
    throw error;
  }
  return record;
}

function ownResult(image: ImageRecord, session: string): ImageRecord {
  const owner = image.pending_session ?? image.metadata?.cfs_session;
  if (owner !== session) throw new ConflictError(`image ${image.id} exists and is not a result of session '${session}'`);
  return image;
}

/**
 * Shows a completed session's prepared results: each record loses `pending_session` and, the
 * first time, is stamped and announced (`Image Registered`) in the same rule any registration
 * follows. Runs after the session's completion was written (the commit point), so it only ever
 * rolls forward; safe to repeat (already shown and announced records are left as they are, one
 * whose announcement failed is announced again). Returns the IDs announced by this call.
 */
export async function revealResultImages(deps: ImageDeps, session: string, ids: string[]): Promise<string[]> {
  const announced: string[] = [];
  for (const id of ids) {
    const image = await deps.images.get(id, { includePending: true });
    // Deleted since (a user's DELETE after success), or never this session's: nothing to show.
    if (!image || (image.pending_session ?? image.metadata?.cfs_session) !== session) continue;
    if (image.pending_session === undefined && image.rootfs_registered) continue;
    await updateImageAndAnnounce(
      deps,
      id,
      (current) => {
        const { pending_session: _pending, ...shown } = current;
        return shown;
      },
      true,
    );
    announced.push(id);
  }
  return announced;
}
