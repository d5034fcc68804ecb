/**
 * `cfs images import --rootfs` of a ~300 MB root (bench/fixtures/bench-root.ts) through the
 * bundled CLI and the embedded server, next to the plain tools doing the same work by hand in
 * the same run: mksquashfs with the same settings, one sha256sum pass, and a copy into the
 * artifact directory. The import does more (checksums while uploading, an HTTP upload into the
 * store, which measures md5 and sha256 as it writes, verification of the stored bytes, the
 * manifest, the record); the goal is that all of it costs at most 10 %. Rounds alternate so
 * cache warmth favours neither side; the fastest round of each is compared.
 *
 *   npx tsx bench/image-import.bench.ts      (or `npm run bench`, which runs every bench file)
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_COMPRESSION, compressionArgs } from '../functions/cli/images/squashfs.ts';
import { startEmbeddedRuntime } from '../functions/server/embedded-runtime.ts';
import { makeBenchRoot } from './fixtures/bench-root.ts';

const run = promisify(execFile);
const ROUNDS = Number(process.env.IMPORT_BENCH_ROUNDS ?? 3);
const seconds = (ms: number) => (ms / 1000).toFixed(2);

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** The same work by hand: pack with the same settings, one sha256 pass, copy into the store's directory. */
async function byHand(root: string, dir: string, storeDir: string): Promise<Record<string, number>> {
  await mkdir(dir, { recursive: true });
  const squashfs = join(dir, 'rootfs.squashfs');
  const target = join(storeDir, 'by-hand', `${Date.now()}`, 'rootfs');
  await mkdir(join(target, '..'), { recursive: true });
  return {
    mksquashfs: await timed(() => run('mksquashfs', [root, squashfs, '-noappend', ...compressionArgs(DEFAULT_COMPRESSION), '-quiet', '-no-progress'])),
    sha256sum: await timed(() => run('sha256sum', [squashfs])),
    cp: await timed(() => run('cp', [squashfs, target])),
  };
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'cfs-import-bench-'));
  try {
    await run(process.execPath, ['scripts/build.mjs']);
    const root = join(base, 'root');
    const description = await makeBenchRoot(root);
    const runtime = await startEmbeddedRuntime({ dataDir: join(base, 'data'), port: 0 });
    try {
      const storeDir = join(base, 'data', 'artifacts');
      console.log(
        `image import bench: root of ${description.files} files, ${description.directories} directories, ${description.symlinks} symlinks, ${(description.bytes / 1e6).toFixed(0)} MB; ` +
          `gzip level ${DEFAULT_COMPRESSION.level}; ${ROUNDS} rounds`,
      );
      const hands: number[] = [];
      const imports: number[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const steps = await byHand(root, join(base, `hand-${round}`), storeDir);
        const hand = Object.values(steps).reduce((a, b) => a + b, 0);
        await rm(join(base, `hand-${round}`), { recursive: true, force: true });
        let id = '';
        const imported = await timed(async () => {
          const { stdout } = await run(process.execPath, [resolve('bin/cfs.mjs'), 'images', 'import', '--name', `bench-${round}`, '--rootfs', root, '--format', 'json'], {
            env: { ...process.env, CFS_API_URL: runtime.url },
          });
          id = (JSON.parse(stdout) as { id: string }).id;
        });
        const size = (await stat(join(storeDir, 'boot-images', id, 'rootfs'))).size;
        hands.push(hand);
        imports.push(imported);
        const detail = Object.entries(steps).map(([step, ms]) => `${step} ${seconds(ms)}`).join(', ');
        console.log(`  round ${round}: by hand ${seconds(hand)} s (${detail}); cfs images import ${seconds(imported)} s; ratio ${(imported / hand).toFixed(3)}x; rootfs ${(size / 1e6).toFixed(1)} MB`);
      }
      const best = { hand: Math.min(...hands), imported: Math.min(...imports) };
      const ratio = best.imported / best.hand;
      console.log(`image import bench: best by hand ${seconds(best.hand)} s, best import ${seconds(best.imported)} s, ratio ${ratio.toFixed(3)}x (goal <= 1.10x) ${ratio <= 1.1 ? 'PASS' : 'OVER'}`);
    } finally {
      await runtime.close();
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

await main();
