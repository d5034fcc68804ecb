import { Command } from 'commander';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { API_TOKEN_ENV, isLoopbackHost } from '../../api/auth.ts';
import { DEFAULT_MAX_CONCURRENT_RUNS } from '../../server/defaults.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../steps/step-ports.ts';
import { CliError, processIo, type CliIo } from '../io.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims the data directory with a pid file, so a second server on it gets a clear refusal
 * (the database allows one opener and would otherwise fail on its first request). A file
 * left by a server that was killed is taken over. Returns the release function.
 */
function claimDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const pidFile = join(dataDir, 'server.pid');
  const mine = String(process.pid);
  try {
    writeFileSync(pidFile, mine, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const holder = Number(readFileSync(pidFile, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
      throw new CliError(`the data directory ${dataDir} is in use by another cfs server (pid ${holder})`);
    }
    writeFileSync(pidFile, mine);
  }
  return () => {
    try {
      if (readFileSync(pidFile, 'utf8').trim() === mine) rmSync(pidFile, { force: true });
    } catch {
      // Already gone.
    }
  };
}

/** Resolves on the first SIGTERM or SIGINT; a second one while shutting down exits at once. */
function firstSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      const force = () => process.exit(1);
      process.once('SIGTERM', force);
      process.once('SIGINT', force);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** A whole number option within bounds, or a one-line error naming the option. */
function wholeNumber(option: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new CliError(`${option} takes a whole number from ${min} to ${max}, not '${value}'`);
  return n;
}

/**
 * `cfs server [--port 8787] [--data-dir ./.cfs] [--max-concurrent-runs 2] [--runner-timeout 14400]`:
 * the whole service on this machine, the API on 127.0.0.1 and every record and image under the
 * data directory. SIGTERM or SIGINT close it cleanly (the database lock is released, so the
 * directory can be reopened at once).
 */
export function serverCommand(io: CliIo = processIo): Command {
  return new Command('server')
    .description('run the service on this machine: the API on 127.0.0.1, data under --data-dir')
    .option('--port <port>', 'TCP port (0 picks a free one)', '8787')
    .option('--host <host>', `address to listen on; other than loopback requires ${API_TOKEN_ENV}`, '127.0.0.1')
    .option('--data-dir <dir>', 'where sessions, configurations and images are kept', './.cfs')
    .option('--max-concurrent-runs <n>', 'sessions running Ansible at once (waiting sessions take no slot)', String(DEFAULT_MAX_CONCURRENT_RUNS))
    .option('--runner-timeout <seconds>', "each session's runner budget (staging, every layer, packaging); past it the session fails", String(DEFAULT_WORKFLOW_SETTINGS.runnerTimeoutSeconds))
    .action(async (options: { port: string; host: string; dataDir: string; maxConcurrentRuns: string; runnerTimeout: string }) => {
      const port = Number(options.port);
      if (!/^\d+$/.test(options.port) || port > 65535) throw new CliError(`--port takes a port number from 0 to 65535, not '${options.port}'`);
      const maxConcurrentRuns = wholeNumber('--max-concurrent-runs', options.maxConcurrentRuns, 1, 64);
      // Below RunAnsible's 24 h bound (as cfs:runnerTimeoutSeconds in AWS), so the runner's own stop comes first.
      const runnerTimeoutSeconds = wholeNumber('--runner-timeout', options.runnerTimeout, 1, 86_000);
      const apiToken = io.env[API_TOKEN_ENV] || undefined;
      if (!isLoopbackHost(options.host) && !apiToken) throw new CliError(`refusing to listen on ${options.host} without an API token: set ${API_TOKEN_ENV} (clients send it as a Bearer token)`);
      const dataDir = resolve(options.dataDir);
      const signal = firstSignal();
      const release = claimDataDir(dataDir);
      try {
        // The runtime (dynalite, the AWS SDK, the engine) is loaded only by this command.
        const { startEmbeddedRuntime } = await import('../../server/embedded-runtime.ts');
        let runtime: Awaited<ReturnType<typeof startEmbeddedRuntime>>;
        try {
          runtime = await startEmbeddedRuntime({ dataDir, port, host: options.host, apiToken, maxConcurrentRuns, workflow: { runnerTimeoutSeconds } });
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(`port ${port} on ${options.host} is already in use; choose another with --port`);
          throw error;
        }
        io.out(`cfs server listening on ${runtime.url} (data: ${runtime.dataDir}; up to ${maxConcurrentRuns} runner(s) at once, ${runnerTimeoutSeconds}s each)`);
        const received = await signal;
        io.out(`cfs server: ${received}, shutting down`);
        await runtime.close();
        io.out('cfs server: stopped');
      } finally {
        release();
      }
    });
}
