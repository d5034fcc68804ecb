/**
 * `npm run bench`: runs every bench/*.bench.ts in turn (sorted by name) and prints what each
 * reports. A bench module runs itself when imported (top-level await) and prints its own
 * results, so each can also be run alone: `npx tsx bench/<name>.bench.ts`. Arguments filter
 * by name: `npm run bench -- image-import` runs only bench/image-import.bench.ts.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const here = fileURLToPath(new URL('.', import.meta.url));
const filters = process.argv.slice(2);
const modules = (await readdir(here))
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();

if (modules.length === 0) {
  console.error(`no bench/*.bench.ts matches ${filters.join(', ')}`);
  process.exit(1);
}

let failed = 0;
for (const file of modules) {
  console.log(`\n== ${file} ==`);
  const started = performance.now();
  try {
    await import(pathToFileURL(join(here, file)).href);
    console.log(`== ${file}: done in ${((performance.now() - started) / 1000).toFixed(1)} s ==`);
  } catch (error) {
    failed++;
    console.error(`== ${file}: failed: ${(error as Error).stack ?? String(error)} ==`);
  }
}
process.exit(failed > 0 ? 1 : 0);
