import type { ArtifactStore, Clock, EventPublisher, ImageRegistry, SessionStore } from '../../ports/index.ts';
import { DEFAULT_IMAGE_BUCKET } from './manifest.ts';

/**
 * What the image use cases need: the registry, the artifact store, the event publisher, the
 * session store (the delete rule reads it), a clock, and the bucket image artifacts live in.
 * `AppPorts` satisfies the port part, so a composition root passes `{ ...ports, bucket }`.
 */
export interface ImageDeps {
  images: ImageRegistry;
  artifacts: ArtifactStore;
  events: EventPublisher;
  sessions: SessionStore;
  clock: Clock;
  /** Defaults to `boot-images`, as IMS. */
  bucket?: string;
  /** The longest an upload URL lasts (default DEFAULT_UPLOAD_URL_SECONDS), whatever a client asks for. */
  uploadUrlSeconds?: number;
}

/**
 * Upload URLs last 15 minutes unless a deployment sets otherwise: the URL is checked when a PUT
 * starts (a long upload may outlast it), and a leaked one is soon useless.
 */
export const DEFAULT_UPLOAD_URL_SECONDS = 900;

/** The bucket image artifacts are written to. */
export function bucketOf(deps: ImageDeps): string {
  return deps.bucket ?? DEFAULT_IMAGE_BUCKET;
}
