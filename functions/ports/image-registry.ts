import type { ImageRecord } from '../core/model/image.ts';

/** IMS v3 image records (same table approach as sessions). */
export interface ImageRegistry {
  create(image: ImageRecord): Promise<void>;
  get(id: string): Promise<ImageRecord | undefined>;
  list(): Promise<ImageRecord[]>;
  /** Read-modify-write with optimistic locking. Throws NotFoundError when missing. */
  update(id: string, change: (current: ImageRecord) => ImageRecord): Promise<ImageRecord>;
  delete(id: string): Promise<boolean>;
}
