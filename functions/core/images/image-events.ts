import type { ImageRecord } from '../model/image.ts';
import type { ProductEvent } from '../../ports/event-publisher.ts';
import type { ImageDeps } from './image-deps.ts';

/** The `Image Registered` event (source `cfs.ims`): what sessions waiting for an image wake on. */
export function imageRegisteredEvent(image: ImageRecord): ProductEvent {
  return {
    source: 'cfs.ims',
    detailType: 'Image Registered',
    detail: { id: image.id, name: image.name, arch: image.arch, metadata: image.metadata ?? {} },
  };
}

/**
 * Applies `change` to an image with the registry's optimistic locking and, when `ready` (the
 * changed image's manifest lists a rootfs) and the image never had one before, stamps
 * `rootfs_registered` in the same write and publishes `Image Registered`. The stamp makes the
 * event fire once per image even when two writers race. If publishing fails the stamp is taken
 * back, so retrying the same request publishes again (at least once, never silently lost).
 */
export async function updateImageAndAnnounce(
  deps: ImageDeps,
  id: string,
  change: (current: ImageRecord) => ImageRecord,
  ready: boolean,
): Promise<ImageRecord> {
  let first = false;
  const updated = await deps.images.update(id, (current) => {
    const next = change(current);
    first = ready && !current.rootfs_registered;
    return first ? { ...next, rootfs_registered: deps.clock.now().toISOString() } : next;
  });
  if (first) await announce(deps, updated);
  return updated;
}

/** Publishes `Image Registered` for an image just stamped; unstamps it when publishing fails. */
export async function announce(deps: ImageDeps, image: ImageRecord): Promise<void> {
  try {
    await deps.events.publish(imageRegisteredEvent(image));
  } catch (error) {
    await deps.images
      .update(image.id, (current) => {
        const { rootfs_registered: _stamp, ...rest } = current;
        return rest;
      })
      .catch(() => undefined);
    throw error;
  }
}
