import type { ImageRecord } from '../core/model/image.ts';

/** How a read treats records still pending their session's completion (`pending_session`). */
export interface ImageReadOptions {
  /** Answer pending results too: only the workflow's own steps and the delete rule's reference scan need them. */
  includePending?: boolean;
}

/**
 * IMS v3 image records (same table approach as sessions). `get` and `list` answer only visible
 * records unless asked: a session's results stay hidden until the session completes, so no
 * reader (API, automations, validation) can see, list or start from a half-made result.
 */
export interface ImageRegistry {
  create(image: ImageRecord): Promise<void>;
  get(id: string, options?: ImageReadOptions): Promise<ImageRecord | undefined>;
  list(options?: ImageReadOptions): Promise<ImageRecord[]>;
  /** Read-modify-write with optimistic locking, pending or not. Throws NotFoundError when missing. */
  update(id: string, change: (current: ImageRecord) => ImageRecord): Promise<ImageRecord>;
  delete(id: string): Promise<boolean>;
}

/** Whether a read with these options answers this record. */
export function answersRecord(image: ImageRecord, options: ImageReadOptions = {}): boolean {
  return options.includePending === true || image.pending_session === undefined;
}
