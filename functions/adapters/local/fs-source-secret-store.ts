import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SourceSecret } from '../../core/sources/source-record.ts';
import type { SourceSecretStore } from '../../ports/source-store.ts';
import { SOURCE_SECRET_NAME } from '../../core/sources/source-schemas.ts';


/**
 * Sources' git credentials on one machine: one owner-only file (0600) per secret in an
 * owner-only directory (0700) of the data directory, written atomically (a 0600 temporary file
 * in the same directory, flushed, then renamed over), so a crash leaves the old secret or the
 * new one, and no other user of the machine can read either. The directory's mode is enforced
 * at every write, also when an operator loosened it.
 */
export class FsSourceSecretStore implements SourceSecretStore {
  constructor(readonly directory: string) {}

  nameProblem(secretName: string): string | undefined {
    return SOURCE_SECRET_NAME.test(secretName) ? undefined : 'must be 1 to 128 letters, digits, - or _ (a file of this service\'s secret directory)';
  }

  private path(secretName: string): string {
    const problem = this.nameProblem(secretName);
    if (problem) throw new Error(`secret name '${secretName}' ${problem}`);
    return join(this.directory, `${secretName}.json`);
  }

  async put(secretName: string, secret: SourceSecret): Promise<void> {
    const path = this.path(secretName);
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    await chmod(this.directory, 0o700);
    const temporary = join(this.directory, `.${secretName}.${randomBytes(6).toString('hex')}.tmp`);
    const file = await open(temporary, 'wx', 0o600);
    try {
      await file.writeFile(JSON.stringify({ username: secret.username, password: secret.password }));
      await file.sync();
    } finally {
      await file.close();
    }
    try {
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async get(secretName: string): Promise<SourceSecret | undefined> {
    let text: string;
    try {
      text = await readFile(this.path(secretName), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const value = JSON.parse(text) as Partial<SourceSecret>;
    if (typeof value.username !== 'string' || typeof value.password !== 'string') throw new Error(`secret '${secretName}' is not a username and password`);
    return { username: value.username, password: value.password };
  }

  async delete(secretName: string): Promise<void> {
    await rm(this.path(secretName), { force: true });
  }

  /** The modes of the directory and of one secret's file (for checks and tests). */
  async modes(secretName: string): Promise<{ directory: number; file: number }> {
    const [directory, file] = await Promise.all([stat(this.directory), stat(this.path(secretName))]);
    return { directory: directory.mode & 0o777, file: file.mode & 0o777 };
  }
}
