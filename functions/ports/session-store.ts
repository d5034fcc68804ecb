import type { SessionRecord } from '../core/model/session.ts';

/** Where sessions live (DynamoDB in both runtimes: AWS, or dynalite on one machine). */
export interface SessionStore {
  /** Stores a new session; throws ConflictError when the name exists (also when two creates race). */
  create(session: SessionRecord): Promise<void>;
  get(name: string): Promise<SessionRecord | undefined>;
  /** All sessions ordered by name. (Filtered, paged queries come with the listing issue.) */
  list(): Promise<SessionRecord[]>;
  /**
   * Read-modify-write with optimistic locking: `change` gets the current record and returns the
   * new one; retried when another writer got there first. Throws NotFoundError when missing.
   */
  update(name: string, change: (current: SessionRecord) => SessionRecord): Promise<SessionRecord>;
  /** Returns false when there was nothing to delete. */
  delete(name: string): Promise<boolean>;
}
