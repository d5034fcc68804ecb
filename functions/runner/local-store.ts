import type { StoredObject } from '../ports/artifact-store.ts';

/**
 * The artifact store when it is a directory on this machine (the embedded runtime; the
 * filesystem store satisfies it): the runner then reads a source rootfs where it lies instead of
 * copying it into the workspace, and moves a squashed result into the store instead of copying
 * it out. In AWS the store is S3 and the runner downloads and uploads as before.
 */
export interface LocalStore {
  /** The file holding a key's bytes. */
  pathOf(key: string): string;
  /** Moves a finished file into the store under `key`, measuring it (size, md5, sha256) on the way. */
  adopt(key: string, file: string): Promise<StoredObject>;
}
