import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../functions/cli/main.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cliEnv, type ServerAddress } from '../helpers/api-token.ts';
import { FakeWorkflow } from '../helpers/cfs-fakes.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(REPO_ROOT, 'bin/cfs.mjs');

/**
 * Runs `cfs ...` in-process (the same program the bin runs) and captures what it prints. Given a
 * server, the CLI is pointed at its data directory and finds its token there by itself; given a
 * URL alone, it sends none.
 */
export async function cfs(server: string | ServerAddress, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const env = typeof server === 'string' ? { CFS_API_URL: server } : cliEnv(server);
  const io: CliIo = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`), env };
  const code = await runCli(argv, io);
  return { code, out, err };
}

/** Runs the real bundled `bin/cfs.mjs` as a child process. */
export function cfsBin(env: Record<string, string>, ...argv: string[]): Promise<{ code: number; out: string; err: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...argv], { env: { ...process.env, ...env }, cwd: REPO_ROOT }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr, ms: performance.now() - started });
    });
  });
}

/** The bundle behind bin/cfs.mjs exists (`npm test` builds it first; a lone test run builds it once). */
export function ensureBuilt(): void {
  if (!existsSync(join(REPO_ROOT, 'dist/cli.mjs'))) execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: REPO_ROOT });
}

/** A fresh data directory, removed by `dispose`. */
export function tempDataDir(): { dir: string; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'cfs-data-'));
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The embedded runtime on a free port with a fake workflow starter that leaves sessions
 * pending (the workflow itself is another issue's), everything else real.
 */
export async function startServer(dataDir: string): Promise<{ runtime: EmbeddedRuntime; workflow: FakeWorkflow }> {
  const workflow = new FakeWorkflow();
  const runtime = await startEmbeddedRuntime({ dataDir, port: 0, overrides: { workflow } });
  return { runtime, workflow };
}

/** `node bin/cfs.mjs server` (with `extraArgs`) as a child process; resolves once it prints its URL, with the environment that points the CLI at it. */
export function spawnServer(dataDir: string, extraArgs: string[] = []): Promise<{ child: ChildProcess; url: string; env: Record<string, string>; output: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'server', '--port', '0', '--data-dir', dataDir, ...extraArgs], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (https?:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!, env: cliEnv({ url: match[1]!, dataDir }), output: () => output, exited });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
}
