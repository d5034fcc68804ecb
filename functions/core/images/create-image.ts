import { randomUUID } from 'node:crypto';
import { IntegrityError, ValidationError } from '../errors.ts';
import type { ImageLink, ImageManifest, ImageRecord } from '../model/image.ts';
import { ownStringMap, stringMap } from '../model/string-map.ts';
import type { ImageDeps } from './image-deps.ts';
import { announce } from './image-events.ts';
import { isImageReady, readManifest } from './manifest.ts';
import { parseInput } from './parse-input.ts';
import { referencedKeys } from './reference-index.ts';
import { imageCreateSchema } from './schemas.ts';

/**
 * Reads the manifest a client-given link points at, for the readiness rule. A link to a
 * manifest that does not exist (yet) is accepted, as IMS does; one that exists but is not a
 * manifest is refused, since nothing could ever stage that image.
 */
export async function manifestForLink(deps: ImageDeps, id: string, link: ImageLink): Promise<ImageManifest | undefined> {
  try {
    return await readManifest(deps.artifacts, { id, name: '', created: '', arch: 'x86_64', link });
  } catch (error) {
    if (error instanceof IntegrityError) throw new ValidationError(error.message, 'link.path');
    throw error;
  }
}

/**
 * Creates an IMS image record: server-assigned UUID (the workflow passes the result id it
 * allocated when staging), `created` now in RFC 3339 UTC, `arch` x86_64 unless given. A record
 * created with a link to a manifest that lists a rootfs is registered at once (and announced).
 */
export async function createImage(deps: ImageDeps, input: unknown, options: { id?: string } = {}): Promise<ImageRecord> {
  const request = parseInput(imageCreateSchema, input);
  const id = options.id ?? randomUUID();
  const now = deps.clock.now().toISOString();
  const manifest = request.link ? await manifestForLink(deps, id, request.link) : undefined;
  const ready = request.link ? isImageReady({ id } as ImageRecord, manifest) : false;
  const record: ImageRecord = {
    id,
    name: request.name,
    created: now,
    arch: request.arch,
    ...(request.link ? { link: request.link, artifact_keys: referencedKeys(request.link, manifest) } : {}),
    // Rebuilt from the client's object: the schema's record leaves a `__proto__` key out.
    metadata: request.metadata ? ownStringMap((input as { metadata: unknown }).metadata, 'metadata') : stringMap(),
    ...(ready ? { rootfs_registered: now } : {}),
  };
  await deps.images.create(record);
  if (ready) await announce(deps, record);
  return record;
}
