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
 *
 * Writes keep the artifact reference index in step with each record's `artifact_keys`: a
 * record's references are written before the record (so a record that references a key
 * claimed for deletion is refused with ConflictError, and nothing is written), and removed
 * after the record is deleted. A write interrupted in between leaves a reference too many,
 * which keeps an object, never one too few.
 */
export interface ImageRegistry extends ArtifactReferences {
  create(image: ImageRecord): Promise<void>;
  get(id: string, options?: ImageReadOptions): Promise<ImageRecord | undefined>;
  list(options?: ImageReadOptions): Promise<ImageRecord[]>;
  /** One page of visible images (pending results are never listed), reading only what the page needs. */
  page(query: ImagePageQuery): Promise<ImagePage>;
  /** Read-modify-write with optimistic locking, pending or not. Throws NotFoundError when missing. */
  update(id: string, change: (current: ImageRecord) => ImageRecord): Promise<ImageRecord>;
  delete(id: string): Promise<boolean>;
}

/** Where a page of images continues: after this image, in the order the query reads (name order keeps the name too). */
export interface ImageCursor {
  id: string;
  /** Present in name order (a `name` or `namePrefix` query): the name of the image `id`. */
  name?: string;
}

/**
 * One page request. `name` (exact) and `namePrefix` read the name index, in name order; any
 * other query reads every image in id order. `matches` is checked on each record read (filters no
 * key serves: substring, glob, arch, metadata key); at most `readBudget` items are examined, so a
 * sparse filter answers a short page with `next` where it stopped instead of reading on.
 */
export interface ImagePageQuery {
  limit: number;
  after?: ImageCursor;
  name?: string;
  namePrefix?: string;
  matches?: (image: ImageRecord) => boolean;
  readBudget: number;
}

export interface ImagePage {
  images: ImageRecord[];
  /** Where the next page starts; absent at the end. */
  next?: ImageCursor;
  /** How many items the page examined (what it cost). */
  read: number;
}

/**
 * The artifact reference index: which images hold on to which store keys (kernels and initrds
 * are shared between a source and its customized results), kept by the registry in step with
 * each record's `artifact_keys`, so a delete frees only keys no other image references, in
 * work that does not grow with the number of images.
 */
export interface ArtifactReferences {
  /**
   * Claims a key for deletion when no image references it: true when the caller may delete the
   * object (from then on, writing a record that references the key is refused); false when a
   * reference remains (the claim is taken back and the object must stay).
   */
  claimUnreferenced(key: string): Promise<boolean>;
  /** Whether every record's references are in the index (records stored before it was kept are indexed once). */
  referencesIndexed(): Promise<boolean>;
  markReferencesIndexed(): Promise<void>;
}

/** Whether a read with these options answers this record. */
export function answersRecord(image: ImageRecord, options: ImageReadOptions = {}): boolean {
  return options.includePending === true || image.pending_session === undefined;
}
