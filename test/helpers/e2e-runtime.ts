import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { ensureBuilt } from '../cli/cli-harness.ts';
import { TempRepos } from './git-repo.ts';

/**
 * Registers an e2e file's hooks for one embedded runtime: started in beforeAll (the bundles built
 * first) on a data directory `<dataDirPrefix>XXXXXX`, closed in afterAll, and then every temporary
 * directory (`tempDir`) and git repository (`repos`) the file's tests made removed. `runtime` is
 * there from the beforeAll on.
 */
export function embeddedRuntimeForFile(dataDirPrefix: string) {
  const repos = new TempRepos();
  const dirs: string[] = [];
  let started: EmbeddedRuntime | undefined;
  const tempDir = (prefix: string): string => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  beforeAll(async () => {
    ensureBuilt();
    started = await startEmbeddedRuntime({ dataDir: tempDir(dataDirPrefix), port: 0 });
  });
  afterAll(async () => {
    await started?.close();
    repos.disposeAll();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return {
    get runtime(): EmbeddedRuntime {
      if (!started) throw new Error('the embedded runtime starts in beforeAll');
      return started;
    },
    repos,
    tempDir,
  };
}
