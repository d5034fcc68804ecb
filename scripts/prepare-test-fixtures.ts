/**
 * Builds the tests' Debian 12 fixture (test/helpers/debian-root.ts) when this machine has none
 * for the current recipe, and prints where it is. CI starts it in the background first thing,
 * so mmdebstrap's minutes overlap the type check, the linter and the unit tests; the end-to-end
 * files that need the fixture wait for it on the cache's lock instead of building it again.
 */
import { debianRoot } from '../test/helpers/debian-root.ts';

const started = performance.now();
try {
  const fixture = await debianRoot();
  console.log(`[prepare-test-fixtures] Debian 12 fixture ready in ${((performance.now() - started) / 1000).toFixed(1)} s: ${fixture.dir}`);
} catch (error) {
  console.error(`[prepare-test-fixtures] the Debian 12 fixture could not be built: ${(error as Error).message}`);
  process.exit(1);
}
