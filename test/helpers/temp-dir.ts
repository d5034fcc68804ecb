import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

/**
 * Registers the suite's hooks for a fresh temporary directory per test: made in beforeEach under
 * the system's temporary directory (`<prefix>XXXXXX`), removed with all it holds in afterEach.
 * The returned function gives the current test's directory.
 */
export function tempDirPerTest(prefix: string): () => string {
  let dir: string | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (!dir) throw new Error('the temporary directory exists only while a test runs');
    return dir;
  };
}
