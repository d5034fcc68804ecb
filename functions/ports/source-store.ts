import type { SourceRecord, SourceSecret } from '../core/sources/source-record.ts';

/** Where source records live (same table as configurations). */
export interface SourceStore {
  /** Creates; a ConflictError when the name exists (also when two creates race). */
  create(source: SourceRecord): Promise<void>;
  /** Replaces an existing source. */
  put(source: SourceRecord): Promise<void>;
  get(name: string): Promise<SourceRecord | undefined>;
  list(): Promise<SourceRecord[]>;
  /** At most `limit` sources after the name `after`, in name order, and the name to continue after when more follow. */
  page(limit: number, after?: string): Promise<{ sources: SourceRecord[]; next?: string }>;
  delete(name: string): Promise<boolean>;
}

/**
 * Where sources' git credentials live: an owner-only file per secret in the data directory
 * (embedded), Secrets Manager under the stack's prefix (AWS). Values are never returned by the API.
 */
export interface SourceSecretStore {
  /** Creates or replaces the secret called `secretName`. */
  put(secretName: string, secret: SourceSecret): Promise<void>;
  get(secretName: string): Promise<SourceSecret | undefined>;
  /** Removes it; a missing secret is not an error. */
  delete(secretName: string): Promise<void>;
  /** Why this store cannot hold a secret of that name (restore names an existing one), or undefined. */
  nameProblem(secretName: string): string | undefined;
}
