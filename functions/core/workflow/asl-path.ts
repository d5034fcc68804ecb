import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The workflow's definition, relative to the project root. */
const ASL_FILE = join('statemachines', 'image-customization.asl.json');

/**
 * The state machine definition file, read by both the CDK stack (lib/) and the embedded engine.
 * Found by walking up from this module, so it resolves from the TypeScript sources and from the
 * CLI bundle in dist/ alike.
 */
export function aslPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, ASL_FILE))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find ${ASL_FILE} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return join(dir, ASL_FILE);
}
