import { execFile, execFileSync } from 'node:child_process';
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
