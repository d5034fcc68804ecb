import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_STAMP, ROOT_DIR } from '../lib/bundles.ts';

/** What the bundles in dist/ are made from: a change to any of these makes them stale. */
const BUILD_INPUTS = ['functions', 'dashboard', 'scripts/build.mjs', 'package-lock.json'];

function newestMtime(path: string): number {
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/**
 * Why dist/ must be built before this run, or undefined when it is current. The stamp is written
 * by scripts/build.mjs after every bundle is written, so an interrupted build counts as stale.
 */
export function staleBuildReason(root = ROOT_DIR): string | undefined {
  const stamp = join(root, BUILD_STAMP);
  if (!existsSync(stamp)) return 'dist/ has not been built';
  const built = statSync(stamp).mtimeMs;
  for (const input of BUILD_INPUTS) {
    const path = join(root, input);
    if (existsSync(path) && newestMtime(path) > built) return `${input} changed since the last build`;
  }
  return undefined;
}

/**
 * Vitest's global setup: rebuild dist/ when a source is newer than it, so an e2e file run alone
 * after an edit tests the edit (the runner and the CLI the tests start are the bundles).
 */
export default function setup(): void {
  const reason = staleBuildReason();
  if (!reason) return;
  console.log(`building dist/ (${reason})`);
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT_DIR, stdio: 'inherit' });
}
