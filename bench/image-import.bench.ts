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
 *   IMPORT_BENCH_ROUNDS=5 IMPORT_BENCH_CLI=path/to/cli.mjs npx tsx bench/image-import.bench.ts
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_COMPRESSION, compressionArgs } from '../functions/cli/images/squashfs.ts';
import { startEmbeddedRuntime } from '../functions/server/embedded-runtime.ts';
import { makeBenchRoot } from './fixtures/bench-root.ts';

const run = promisify(execFile);
const ROUNDS = Number(process.env.IMPORT_BENCH_ROUNDS ?? 3);
/** The CLI to time (default the bundled bin, built at the start). */
const CLI = resolve(process.env.IMPORT_BENCH_CLI ?? 'bin/cfs.mjs');
const seconds = (ms: number) => (ms / 1000).toFixed(2);

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

let clockTicks = 100;

/**
 * CPU time of this process (the embedded server runs here) plus every child it has waited for
 * (/proc/self/stat cutime + cstime; a waited-for child's count includes its own children, so
 * mksquashfs under the CLI counts). On a loaded machine wall time wanders; CPU time does less.
 */
async function cpuMs(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const own = process.cpuUsage();
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / clockTicks + (own.user + own.system) / 1000;
}

async function measured(work: () => Promise<unknown>): Promise<[number, number]> {
  const before = await cpuMs();
  const wall = await timed(work);
  return [wall, (await cpuMs()) - before];
}

/**
 * Runs `cfs images import` and times its phases from the progress lines it prints on stderr:
 * start (node and the bundle loading), pack (mksquashfs), upload and register (the rest).
 */
function importThroughCli(server: { url: string; dataDir: string }, name: string, root: string): Promise<{ id: string; phases: Record<string, number> }> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const marks: Record<string, number> = {};
    const child = spawn(process.execPath, [CLI, 'images', 'import', '--name', name, '--rootfs', root, '--format', 'json'], {
      env: { ...process.env, CFS_API_URL: server.url, CFS_DATA_DIR: server.dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      const now = performance.now();
      stderr += chunk.toString();
      if (marks.packing === undefined && stderr.includes('packing')) marks.packing = now;
      if (marks.uploading === undefined && stderr.includes('uploading rootfs')) marks.uploading = now;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const ended = performance.now();
      if (code !== 0) return reject(new Error(`cfs images import exited ${code}: ${stderr}`));
      const packing = marks.packing ?? started;
      const uploading = marks.uploading ?? packing;
      resolvePromise({
        id: (JSON.parse(stdout) as { id: string }).id,
        phases: { start: packing - started, pack: uploading - packing, 'upload+register': ended - uploading },
      });
    });
  });
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
    clockTicks = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
    const root = join(base, 'root');
    const description = await makeBenchRoot(root);
    const runtime = await startEmbeddedRuntime({ dataDir: join(base, 'data'), port: 0 });
    try {
      const storeDir = join(base, 'data', 'artifacts');
      console.log(
        `image import bench: root of ${description.files} files, ${description.directories} directories, ${description.symlinks} symlinks, ${(description.bytes / 1e6).toFixed(0)} MB; ` +
          `gzip level ${DEFAULT_COMPRESSION.level}; ${ROUNDS} rounds`,
      );
      const hand = { wall: [] as number[], cpu: [] as number[] };
      const imports = { wall: [] as number[], cpu: [] as number[] };
      for (let round = 1; round <= ROUNDS; round++) {
        let steps: Record<string, number> = {};
        const [handWall, handCpu] = await measured(async () => {
          steps = await byHand(root, join(base, `hand-${round}`), storeDir);
        });
        await rm(join(base, `hand-${round}`), { recursive: true, force: true });
        let id = '';
        let phases: Record<string, number> = {};
        const [importWall, importCpu] = await measured(async () => {
          ({ id, phases } = await importThroughCli(runtime, `bench-${round}`, root));
        });
        const size = (await stat(join(storeDir, 'boot-images', id, 'rootfs'))).size;
        hand.wall.push(handWall);
        hand.cpu.push(handCpu);
        imports.wall.push(importWall);
        imports.cpu.push(importCpu);
        const detail = (parts: Record<string, number>) => Object.entries(parts).map(([step, ms]) => `${step} ${seconds(ms)}`).join(', ');
        console.log(
          `  round ${round}: by hand ${seconds(handWall)} s wall, ${seconds(handCpu)} s cpu (${detail(steps)}); ` +
            `cfs images import ${seconds(importWall)} s wall, ${seconds(importCpu)} s cpu (${detail(phases)}); wall ratio ${(importWall / handWall).toFixed(3)}x; rootfs ${(size / 1e6).toFixed(1)} MB`,
        );
      }
      const best = (values: number[]) => Math.min(...values);
      const ratio = best(imports.wall) / best(hand.wall);
      const cpuRatio = best(imports.cpu) / best(hand.cpu);
      const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
      console.log(
        `image import bench: best wall by hand ${seconds(best(hand.wall))} s, import ${seconds(best(imports.wall))} s, ratio ${ratio.toFixed(3)}x (goal <= 1.10x) ${ratio <= 1.1 ? 'PASS' : 'OVER'}; ` +
          `best cpu by hand ${seconds(best(hand.cpu))} s, import ${seconds(best(imports.cpu))} s, ratio ${cpuRatio.toFixed(3)}x; load average ${load}`,
      );
    } finally {
      await runtime.close();
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

await main();
