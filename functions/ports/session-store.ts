import type { SessionRecord, SessionStatus, SessionSucceeded } from '../core/model/session.ts';

/**
 * Which sessions a listing or a bulk delete takes (the CFS list filters, already parsed). Every
 * field narrows: a session matches when it meets all of them.
 */
export interface SessionFilter {
  status?: SessionStatus;
  succeeded?: SessionSucceeded;
  /** A substring of the name. */
  nameContains?: string;
  /** `min_age`: started strictly before this instant (RFC 3339). */
  startedBefore?: string;
  /** `max_age`: started strictly after this instant (RFC 3339). */
  startedAfter?: string;
  /** Every pair must be among the session's tags. */
  tags?: Record<string, string>;
}

/** One page of a listing: CFS orders sessions by name and pages with `after_id`, a name. */
export interface SessionPageRequest {
  filter: SessionFilter;
  limit: number;
  /** Only sessions whose name sorts after this (need not be a stored session). */
  after?: string;
}

export interface SessionPage {
  /** At most `limit` matching sessions, in name order. */
  sessions: SessionRecord[];
  /**
   * Present when more may match: the name to continue after. A page can be shorter than the
   * limit when the store's read budget per page ran out first (see table-schema.ts).
   */
  next?: string;
}

/** Where sessions live (DynamoDB in both runtimes: AWS, or dynalite on one machine). */
export interface SessionStore {
  /** Stores a new session; throws ConflictError when the name exists (also when two creates race). */
  create(session: SessionRecord): Promise<void>;
  get(name: string): Promise<SessionRecord | undefined>;
  /** All sessions ordered by name (reads every session: for tests and small sets only; the product finds sessions with query). */
  list(): Promise<SessionRecord[]>;
  /** One page of the sessions that match a filter, in name order, read through an index where one serves the filter. */
  query(request: SessionPageRequest): Promise<SessionPage>;
  /** The names of every session that matches, in no particular order (bulk delete, retention). */
  matchingNames(filter: SessionFilter): Promise<string[]>;
  /**
   * Read-modify-write with optimistic locking: `change` gets the current record and returns the
   * new one; retried when another writer got there first. Throws NotFoundError when missing.
   * `known`, a record this store just returned, may be taken as the current one without a read.
   */
  update(name: string, change: (current: SessionRecord) => SessionRecord, known?: SessionRecord): Promise<SessionRecord>;
  /** Returns false when there was nothing to delete. */
  delete(name: string): Promise<boolean>;
}
