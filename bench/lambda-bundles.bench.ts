/**
 * The size of each Lambda's deployed bundle (dist/lambda/<name>/index.mjs, minified, built by
 * scripts/build.mjs: exactly what lib/ deploys), gzipped too (about what the zip asset holds),
 * and how long a fresh Node process takes to import it (the module-loading part of a cold
 * start; no AWS call happens at import). Goal: under 1 MB minified each.
 *
 *   npx tsx bench/lambda-bundles.bench.ts      (or `npm run bench`, which runs every bench file)
 */
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { lambdaBundleDir, lambdaEntryNames, ROOT_DIR } from '../lib/bundles.ts';

const run = promisify(execFile);
const GOAL_BYTES = 1024 * 1024;
const IMPORT_ROUNDS = Number(process.env.LAMBDA_BENCH_IMPORT_ROUNDS ?? 3);
const kb = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;

/** Milliseconds for a new Node process to import the bundle, minus one that imports nothing. */
async function importMs(file: string): Promise<number> {
  const time = async (code: string) => {
    const started = performance.now();
    await run(process.execPath, ['--input-type=module', '--no-warnings', '-e', code], { env: { ...process.env, AWS_REGION: 'us-east-1' } });
    return performance.now() - started;
  };
  const rounds: number[] = [];
  for (let i = 0; i < IMPORT_ROUNDS; i++) {
    const baseline = await time('');
    rounds.push((await time(`await import(${JSON.stringify(pathToFileURL(file).href)});`)) - baseline);
  }
  return Math.min(...rounds);
}

async function main(): Promise<void> {
  await run(process.execPath, ['scripts/build.mjs'], { cwd: ROOT_DIR });
  let over = 0;
  console.log(`lambda bundles: minified ESM, Node ${process.version} importing (best of ${IMPORT_ROUNDS})`);
  for (const name of lambdaEntryNames()) {
    const file = join(lambdaBundleDir(name), 'index.mjs');
    const size = (await stat(file)).size;
    const gzipped = gzipSync(await readFile(file)).length;
    const ms = await importMs(file);
    if (size >= GOAL_BYTES) over++;
    console.log(`  ${name.padEnd(20)} ${kb(size).padStart(8)} minified, ${kb(gzipped).padStart(7)} gzip, import ${ms.toFixed(0).padStart(4)} ms  ${size < GOAL_BYTES ? 'PASS' : 'OVER'}`);
  }
  console.log(`lambda bundles: ${over === 0 ? 'every bundle under 1 MB (goal) PASS' : `${over} bundle(s) at or over 1 MB OVER`}`);
}

await main();
