/**
 * The runner on a ~300 MB image with a small playbook, next to the same raw tools run by hand in
 * the same process: unsquashfs, ansible-playbook with the same inventory, mksquashfs with the
 * same settings and one sha256 pass. The runner does more (verify the source in the local
 * store, the sandbox, the clone, move the result into the store with md5 and sha256, writing
 * the outcome, cleaning up); the goal is that
 * all of it costs at most 10 % of wall time. Rounds alternate so cache warmth favours neither
 * side; the fastest round of each is compared. CPU time of each side is printed too: on a
 * shared machine it stays put while wall time follows the other load.
 *
 *   npx tsx bench/runner.bench.ts          (or `npm run bench`, which runs every bench file)
 */
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { FsArtifactStore } from '../functions/adapters/local/fs-artifact-store.ts';
import { inventoryWithRoots } from '../functions/runner/layers.ts';
import { parseRunDocument } from '../functions/runner/run-document.ts';
import { makeBenchRoot } from './fixtures/bench-root.ts';
import { RUNNER_BENCH_PLAYBOOK } from './fixtures/playbooks.ts';

const run = promisify(execFile);
const ROUNDS = Number(process.env.RUNNER_BENCH_ROUNDS ?? 2);
const IMAGE = '7c1e4f0a-9b2d-4e3f-8a5b-6c7d8e9f0a1b';

const seconds = (ms: number) => (ms / 1000).toFixed(2);

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await work();
  return [value, performance.now() - started];
}

let clockTicks = 100;

/**
 * CPU time (user + system, ms) of every child this process has waited for, from
 * /proc/self/stat's cutime and cstime: a waited-for child's count includes its own children, so
 * the runner's number holds Ansible, unsquashfs and mksquashfs. Unlike wall time it does not
 * grow when other work shares the machine's cores.
 */
async function childrenCpuMs(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / clockTicks;
}

async function measured<T>(work: () => Promise<T>): Promise<[T, number, number]> {
  const cpuBefore = await childrenCpuMs();
  const [value, wall] = await timed(work);
  return [value, wall, (await childrenCpuMs()) - cpuBefore];
}

async function git(dir: string, ...args: string[]): Promise<string> {
  const env = { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example' };
  return (await run('git', ['-C', dir, ...args], { env })).stdout.trim();
}

/** The same work by hand: one step per tool, nothing else. */
async function byHand(options: { squashfs: string; dir: string; repo: string; inventoryDoc: Record<string, unknown> }): Promise<Record<string, number>> {
  const root = join(options.dir, 'root');
  const output = join(options.dir, 'result.squashfs');
  const inventory = join(options.dir, 'inventory.yaml');
  const steps: Record<string, number> = {};
  await mkdir(options.dir, { recursive: true });
  [, steps.unsquashfs] = await timed(() => run('unsquashfs', ['-no-progress', '-quiet', '-dest', root, options.squashfs]));
  await writeFile(inventory, stringify(inventoryWithRoots(options.inventoryDoc as never, new Map([[IMAGE, root]]))));
  [, steps.ansible] = await timed(() => run('ansible-playbook', ['--inventory', inventory, '--limit', IMAGE, '--', 'site.yml'], { cwd: options.repo }));
  [, steps.mksquashfs] = await timed(() => run('mksquashfs', [root, output, '-noappend', '-no-progress', '-quiet', '-comp', 'gzip', '-b', '131072']));
  [, steps.sha256] = await timed(() => run('sha256sum', [output]));
  await rm(options.dir, { recursive: true, force: true });
  return steps;
}

async function runnerProgram(runner: string, documentKey: string, storeDir: string, workspace: string): Promise<void> {
  const child = spawn(process.execPath, [runner, '--document-key', documentKey, '--store-dir', storeDir, '--workspace', workspace], { stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  if (code !== 0) throw new Error(`the runner exited with ${code}`);
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'cfs-runner-bench-'));
  clockTicks = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  try {
    // The runner bundle scripts/build.mjs makes, built from the current source.
    await run(process.execPath, ['scripts/build.mjs']);
    const rootDir = join(base, 'bench-root');
    const description = await makeBenchRoot(rootDir);
    const squashfs = join(base, 'source.squashfs');
    await run('mksquashfs', [rootDir, squashfs, '-noappend', '-no-progress', '-quiet']);
    await rm(rootDir, { recursive: true, force: true });
    const store = new FsArtifactStore(join(base, 'store'));
    const rootfs = await store.put(`boot-images/${IMAGE}/rootfs`, createReadStream(squashfs));
    await rm(squashfs);

    const repo = join(base, 'repo');
    await mkdir(repo);
    await git(repo, 'init', '-q');
    await writeFile(join(repo, 'site.yml'), RUNNER_BENCH_PLAYBOOK);
    await git(repo, 'add', 'site.yml');
    await git(repo, 'commit', '-q', '-m', 'bench playbook');
    const commit = await git(repo, 'rev-parse', 'HEAD');

    const inventory = {
      all: {
        children: {
          cfs_image: {
            hosts: { [IMAGE]: {} },
            vars: { ansible_connection: 'community.general.chroot', cray_cfs_image: true, ansible_python_interpreter: '/usr/bin/python3' },
          },
          Compute: { hosts: { [IMAGE]: {} } },
        },
      },
    };
    const document = parseRunDocument({
      session: 'bench',
      images: [
        {
          image_id: IMAGE,
          source_name: 'bench',
          arch: 'x86_64',
          rootfs: { key: rootfs.key, size: rootfs.size, sha256: rootfs.sha256 },
          result_name: 'bench_cfs_bench',
          result_id: 'bench-result',
          upload_prefix: 'boot-images/bench-result/',
        },
      ],
      inventory,
      layers: [{ index: 0, name: 'bench', clone_url: `file://${repo}`, commit, playbook: 'site.yml' }],
      ansible: { limit: IMAGE, verbosity: 0, passthrough: [] },
      squashfs: { compressor: 'source' },
      allowed_schemes: ['file'],
      outcome_key: 'sessions/bench/runner-outcome.json',
      logs_prefix: 'sessions/bench/logs/',
    });
    const documentKey = 'sessions/bench/run-document.json';
    await store.put(documentKey, JSON.stringify(document));
    const runner = resolve('dist/runner.mjs');

    console.log(`runner bench: ${description.files} files, ${description.directories} directories, ${description.symlinks} symlinks, ${(description.bytes / 1e6).toFixed(0)} MB unpacked; rootfs ${(rootfs.size / 1e6).toFixed(0)} MB gzip`);
    const hand = { wall: [] as number[], cpu: [] as number[] };
    const program = { wall: [] as number[], cpu: [] as number[] };
    for (let round = 1; round <= ROUNDS; round += 1) {
      const [steps, handWall, handCpu] = await measured(() => byHand({ squashfs: store.pathOf(rootfs.key), dir: join(base, `hand-${round}`), repo, inventoryDoc: inventory }));
      const [, runnerWall, runnerCpu] = await measured(() => runnerProgram(runner, documentKey, store.root, join(base, `ws-${round}`)));
      hand.wall.push(handWall);
      hand.cpu.push(handCpu);
      program.wall.push(runnerWall);
      program.cpu.push(runnerCpu);
      const detail = Object.entries(steps).map(([step, ms]) => `${step} ${seconds(ms)}`).join(', ');
      console.log(
        `  round ${round}: by hand ${seconds(handWall)} s wall, ${seconds(handCpu)} s cpu (${detail}); runner ${seconds(runnerWall)} s wall, ${seconds(runnerCpu)} s cpu; wall ratio ${(runnerWall / handWall).toFixed(3)}x`,
      );
    }
    const best = (values: number[]) => Math.min(...values);
    const wallRatio = best(program.wall) / best(hand.wall);
    const cpuRatio = best(program.cpu) / best(hand.cpu);
    console.log(
      `runner bench: best wall by hand ${seconds(best(hand.wall))} s, runner ${seconds(best(program.wall))} s, ratio ${wallRatio.toFixed(3)}x (goal <= 1.10x) ${wallRatio <= 1.1 ? 'PASS' : 'OVER'}; ` +
        `best cpu by hand ${seconds(best(hand.cpu))} s, runner ${seconds(best(program.cpu))} s, ratio ${cpuRatio.toFixed(3)}x; load average ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')}`,
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

await main();
