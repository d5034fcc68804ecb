/**
 * A file over 5 GB (what one S3 PUT cannot take) imported with `cfs images import --squashfs`
 * through the embedded server, which sends it in multipart parts (16 MiB, 4 at once, each checked
 * against its sha256 on arrival, joined and measured at completion, promoted by a rename), and
 * downloaded back with `cfs images download` (ranged GETs, checked at the end); side by side with
 * `cp` of the same file on the same disk, and `cp` plus one `sha256sum` pass (the least the
 * checked transfer has to do). The squashfs is made uncompressed from incompressible bytes (a
 * 64 MiB random block repeated), so making it costs disk time only.
 *
 *   npx tsx bench/big-transfer.bench.ts             (5.5 GiB)
 *   BIG_BENCH_GIB=6 npx tsx bench/big-transfer.bench.ts
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startEmbeddedRuntime } from '../functions/server/embedded-runtime.ts';

const run = promisify(execFile);
const GIB = 1024 ** 3;
const SIZE = Math.round(Number(process.env.BIG_BENCH_GIB ?? 5.5) * GIB);
const seconds = (ms: number) => (ms / 1000).toFixed(1);
const rate = (bytes: number, ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
const CLI = resolve('functions/cli/main.ts');

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** Writes `size` bytes: one random 64 MiB block again and again (incompressible, cheap to make). */
async function writeNoise(file: string, size: number): Promise<void> {
  const block = randomBytes(64 * 1024 * 1024);
  const handle = await open(file, 'w');
  try {
    for (let at = 0; at < size; at += block.length) await handle.write(block, 0, Math.min(block.length, size - at), at);
  } finally {
    await handle.close();
  }
}

/** Runs the CLI (from source, through tsx) and answers its stdout; stderr is the progress. */
function cfs(env: Record<string, string>, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolvePromise(stdout) : reject(new Error(`cfs ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`))));
  });
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'cfs-big-transfer-'));
  try {
    const tree = join(base, 'tree');
    await mkdir(tree);
    await writeNoise(join(tree, 'noise'), SIZE);
    const squashfs = join(base, 'big.squashfs');
    const making = await timed(() => run('mksquashfs', [tree, squashfs, '-noappend', '-noI', '-noD', '-noF', '-noX', '-no-duplicates', '-quiet', '-no-progress']));
    await rm(tree, { recursive: true, force: true });
    const size = (await stat(squashfs)).size;
    console.log(`big transfer bench: a ${(size / 1e9).toFixed(2)} GB squashfs (${(size / GIB).toFixed(2)} GiB, made in ${seconds(making)} s) on ${base}`);

    const copy = join(base, 'copy.squashfs');
    const cp = await timed(() => run('cp', [squashfs, copy]));
    const sha = await timed(() => run('sha256sum', [copy]));
    await rm(copy, { force: true });

    const runtime = await startEmbeddedRuntime({ dataDir: join(base, 'data'), port: 0 });
    let imported = 0;
    let downloaded = 0;
    let id = '';
    try {
      const env = { CFS_API_URL: runtime.url, CFS_API_TOKEN: runtime.apiToken, XDG_CACHE_HOME: join(base, 'cache') };
      imported = await timed(async () => {
        id = (JSON.parse(await cfs(env, ['images', 'import', '--name', 'big', '--squashfs', squashfs, '--format', 'json'])) as { id: string }).id;
      });
      const stored = (await stat(join(base, 'data', 'artifacts', 'boot-images', id, 'rootfs'))).size;
      if (stored !== size) throw new Error(`the store holds ${stored} bytes, the file has ${size}`);
      downloaded = await timed(() => cfs(env, ['images', 'download', id, '-o', join(base, 'back.squashfs')]));
    } finally {
      await runtime.close();
    }
    const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    console.log(`  cp ${seconds(cp)} s (${rate(size, cp)}); cp + sha256sum ${seconds(cp + sha)} s`);
    console.log(`  cfs images import (multipart) ${seconds(imported)} s (${rate(size, imported)}): ${(imported / cp).toFixed(2)}x cp, ${(imported / (cp + sha)).toFixed(2)}x cp + sha256sum`);
    console.log(`  cfs images download (ranged) ${seconds(downloaded)} s (${rate(size, downloaded)}): ${(downloaded / cp).toFixed(2)}x cp, ${(downloaded / (cp + sha)).toFixed(2)}x cp + sha256sum`);
    console.log(`big transfer bench: load average ${load}`);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

await main();
