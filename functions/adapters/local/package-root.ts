import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's root directory, found from this module's location whether it runs from the
 * TypeScript sources or from the bundle in dist/, so files shipped beside the code (the ASL,
 * the runner bundle) are found either way.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'statemachines'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the project root (package.json beside statemachines/)');
    dir = parent;
  }
  return dir;
}

/** The dashboard folder at the project root, found from the sources and from the bundle in dist/ alike; undefined where there is none. */
export function projectDashboardDir(): string | undefined {
  try {
    return join(packageRoot(), 'dashboard');
  } catch {
    return undefined;
  }
}
