import { ConflictError, NotFoundError } from '../errors.ts';
import type { ImageLink, ImageRecord } from '../model/image.ts';
import { stringMap, type StringMap } from '../model/string-map.ts';
import { manifestForLink } from './create-image.ts';
import type { ImageDeps } from './image-deps.ts';
import { updateImageAndAnnounce } from './image-events.ts';
import { isImageReady } from './manifest.ts';
import { referencedKeys } from './reference-index.ts';
import { parseInput } from './parse-input.ts';
import { imagePatchSchema, type MetadataOperation } from './schemas.ts';

function refuseRelink(current: ImageRecord, link: ImageLink): void {
  if (current.link && current.link.path !== link.path) {
    throw new ConflictError(
      `image ${current.id} already links ${current.link.path}; an image's artifacts do not change once linked (register a new image instead)`,
    );
  }
}

function applyMetadata(metadata: Record<string, string>, operations: MetadataOperation[]): StringMap {
  const next = stringMap(Object.entries(metadata));
  for (const op of operations) {
    if (op.operation === 'set') next[op.key] = op.value ?? '';
    else delete next[op.key];
  }
  return next;
}

/**
 * PATCH of an IMS image: `arch`, `link` (only to set it, or to the same path with a new etag:
 * a link never moves to other bytes), and `metadata` set/remove operations (any key is data;
 * `cfs_*` keys are the workflow's and refused by the schema). Setting a link to a
 * manifest that lists a rootfs registers the image (and announces it, the first time).
 */
export async function patchImage(deps: ImageDeps, id: string, input: unknown): Promise<ImageRecord> {
  const patch = parseInput(imagePatchSchema, input);
  const current = await deps.images.get(id);
  if (!current) throw new NotFoundError('image', id);
  if (patch.link) refuseRelink(current, patch.link);
  const manifest = patch.link ? await manifestForLink(deps, id, patch.link) : undefined;
  const ready = patch.link ? isImageReady(current, manifest) : false;
  return updateImageAndAnnounce(
    deps,
    id,
    (record) => {
      if (patch.link) refuseRelink(record, patch.link);
      return {
        ...record,
        ...(patch.arch ? { arch: patch.arch } : {}),
        // The same path with a new etag keeps the keys it held.
        ...(patch.link ? { link: patch.link, artifact_keys: (record.link ? record.artifact_keys : undefined) ?? referencedKeys(patch.link, manifest) } : {}),
        ...(patch.metadata ? { metadata: applyMetadata(record.metadata ?? {}, patch.metadata) } : {}),
      };
    },
    ready,
  );
}
