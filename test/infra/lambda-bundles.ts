import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { lambdaBundleDir, missingBundles, ROOT_DIR } from '../../lib/bundles.ts';

/** Builds dist/ once when a bundle is missing (`npm test` builds first; a lone vitest run may not have). */
export function ensureLambdaBundles(): void {
  if (missingBundles().length > 0) execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT_DIR, stdio: 'inherit' });
}

/** The bundled entry point of a handler. */
export function lambdaBundlePath(name: string): string {
  return join(lambdaBundleDir(name), 'index.mjs');
}
