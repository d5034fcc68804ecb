import { Command } from 'commander';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dataDirFrom } from '../../server/api-token.ts';
import { LOCAL_ENV, SYSTEM_ENV } from '../../server/environment.ts';
import { DEFAULT_MAX_CONCURRENT_RUNS } from '../../server/defaults.ts';
import { checkListening } from '../../server/listening.ts';
import { describeS3StoreLocation, parseS3StoreLocation, type S3StoreLocation } from '../../server/s3-store-location.ts';
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

const SIZE_UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** A size such as `8G`, `512M` or `0` (binary units, an optional `i`/`iB`/`B`), or a one-line error naming the option. */
function byteSize(option: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(value.trim());
  if (!match) throw new CliError(`${option} takes a size such as 8G, 512M or 0, not '${value}'`);
  return Math.floor(Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!);
}

interface ServerOptions {
  port: string;
  host: string;
  dataDir?: string;
  maxConcurrentRuns: string;
  runnerTimeout: string;
  runnerStopGrace: string;
  network: string;
  workspaceMemory?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsSelfSigned?: boolean;
  insecureHttp?: boolean;
  publicUrl?: string;
  artifactStore?: string;
  s3Endpoint?: string;
}

/**
 * `cfs server [--port 8787] [--data-dir ./.cfs] [--max-concurrent-runs 2] [--runner-timeout 14400]
 * [--tls-cert F --tls-key F | --tls-self-signed] [--public-url URL] [--insecure-http]
 * [--artifact-store s3://BUCKET[/prefix] [--s3-endpoint URL]]`: the whole service on this machine,
 * the API on 127.0.0.1 and every record and image under the data directory (the images in the
 * S3 bucket instead with --artifact-store). Every request needs the API token kept in the data directory (mode 0600); the
 * dashboard gets in through the one-time link printed at start. SIGTERM or SIGINT close it
 * cleanly (the database lock is released, so the directory can be reopened at once); SIGHUP
 * reloads the TLS certificate and key.
 */
export function serverCommand(io: CliIo = processIo): Command {
  return new Command('server')
    .description('run the service on this machine: the API on 127.0.0.1, data under --data-dir')
    .option('--port <port>', 'TCP port (0 picks a free one)', '8787')
    .option('--host <host>', 'address to listen on; other than loopback requires TLS (or --insecure-http)', '127.0.0.1')
    .option('--data-dir <dir>', `where sessions, configurations, images and the API token are kept (default ${LOCAL_ENV.DATA_DIR}, else ./.cfs)`)
    .option('--max-concurrent-runs <n>', 'sessions running Ansible at once (waiting sessions take no slot)', String(DEFAULT_MAX_CONCURRENT_RUNS))
    .option('--runner-timeout <seconds>', "each session's runner budget (staging, every layer, packaging); past it the session fails", String(DEFAULT_WORKFLOW_SETTINGS.runnerTimeoutSeconds))
    .option('--runner-stop-grace <seconds>', 'how long a cancelled (or stopping) session\'s runner gets after SIGTERM to clean up before its process group is killed', String(DEFAULT_WORKFLOW_SETTINGS.runnerStopGraceSeconds))
    .option('--network <mode>', "the layers' network in the runner's sandbox: egress (out through a user-mode stack; no host loopback, no link-local) or none (loopback only)", 'egress')
    .option('--workspace-memory <size>', 'RAM the runners may unpack image roots into, together (e.g. 8G, 512M; 0: always on disk); a root goes to RAM only when its size and room for the layers fit (default: half of this machine\'s memory)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain); reloaded on SIGHUP')
    .option('--tls-key <file>', 'the PEM key of --tls-cert; reloaded on SIGHUP')
    .option('--tls-self-signed', 'serve HTTPS with a self-signed certificate for the public host, kept in <data dir>/tls (clients trust tls/cert.pem)')
    .option('--public-url <url>', 'the address clients reach the server at, which signed artifact URLs carry (e.g. https://cfs.example.org:8787; never 0.0.0.0)')
    .option('--insecure-http', 'allow plain HTTP off loopback: a TLS-terminating proxy is in front')
    .option('--artifact-store <s3://bucket[/prefix]>', 'keep every artifact (images, session logs, runner documents) in this S3 bucket instead of <data dir>/artifacts; credentials and region from the standard AWS chain (AWS_ACCESS_KEY_ID, AWS_REGION...; region default us-east-1)')
    .option('--s3-endpoint <url>', 'the S3-protocol endpoint of --artifact-store (MinIO, Ceph RADOS gateway), addressed path-style; default AWS')
    .action(async (options: ServerOptions, command: Command) => {
      const port = Number(options.port);
      if (!/^\d+$/.test(options.port) || port > 65535) throw new CliError(`--port takes a port number from 0 to 65535, not '${options.port}'`);
      const maxConcurrentRuns = wholeNumber('--max-concurrent-runs', options.maxConcurrentRuns, 1, 64);
      // Below RunAnsible's 24 h bound (as cfs:runnerTimeoutSeconds in AWS), so the runner's own stop comes first.
      const runnerTimeoutSeconds = wholeNumber('--runner-timeout', options.runnerTimeout, 1, 86_000);
      const runnerStopGraceSeconds = wholeNumber('--runner-stop-grace', options.runnerStopGrace, 1, 3600);
      if (options.network !== 'egress' && options.network !== 'none') throw new CliError(`--network takes egress or none, not '${options.network}'`);
      const runnerNetwork = options.network;
      const workspaceMemoryBytes = options.workspaceMemory === undefined ? undefined : byteSize('--workspace-memory', options.workspaceMemory);
      // CFS_API_TOKEN, when set, is the token (and is kept in the data directory for `cfs auth token`).
      const apiToken = io.env[LOCAL_ENV.API_TOKEN] || undefined;
      if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new CliError('--tls-cert and --tls-key go together');
      if (options.tlsCert !== undefined && options.tlsSelfSigned) throw new CliError('--tls-self-signed and --tls-cert exclude each other');
      const tls = options.tlsCert !== undefined ? { certFile: resolve(options.tlsCert), keyFile: resolve(options.tlsKey!) } : undefined;
      if (options.s3Endpoint !== undefined && options.artifactStore === undefined) throw new CliError('--s3-endpoint goes with --artifact-store s3://BUCKET[/prefix]');
      let artifactStore: S3StoreLocation | undefined;
      try {
        if (options.artifactStore !== undefined) artifactStore = parseS3StoreLocation(options.artifactStore, options.s3Endpoint, io.env);
      } catch (error) {
        throw new CliError((error as Error).message);
      }
      try {
        checkListening({ host: options.host, secure: tls !== undefined || options.tlsSelfSigned === true, insecureHttp: options.insecureHttp, publicUrl: options.publicUrl });
      } catch (error) {
        throw new CliError((error as Error).message);
      }
      // Options first, then the machine: the runner's sandbox needs these here, so refuse to start rather than fail every session.
      const { checkSandboxPrerequisites } = await import('../../runner/sandbox-prerequisites.ts');
      const prerequisites = await checkSandboxPrerequisites({ network: runnerNetwork, path: io.env[SYSTEM_ENV.PATH] ?? '' });
      if ('problem' in prerequisites) throw new CliError(prerequisites.problem);
      // The program's global --data-dir takes the option wherever it is written (commander gives it to the program).
      const dataDir = dataDirFrom(options.dataDir ?? command.optsWithGlobals<{ dataDir?: string }>().dataDir, io.env);
      const signal = firstSignal();
      const release = claimDataDir(dataDir);
      try {
        // The runtime (dynalite, the AWS SDK, the engine) is loaded only by this command.
        const { startEmbeddedRuntime } = await import('../../server/embedded-runtime.ts');
        let runtime: Awaited<ReturnType<typeof startEmbeddedRuntime>>;
        try {
          runtime = await startEmbeddedRuntime({
            dataDir, port, host: options.host, apiToken, maxConcurrentRuns, workflow: { runnerTimeoutSeconds, runnerStopGraceSeconds }, runnerNetwork, workspaceMemoryBytes,
            tls, tlsSelfSigned: options.tlsSelfSigned, insecureHttp: options.insecureHttp, publicUrl: options.publicUrl, ...(artifactStore ? { artifactStore } : {}),
          });
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(`port ${port} on ${options.host} is already in use; choose another with --port`);
          throw error;
        }
        const { defaultWorkspaceMemoryBytes } = await import('../../adapters/local/workspace-memory-budget.ts');
        const memory = workspaceMemoryBytes ?? defaultWorkspaceMemoryBytes();
        const inRam = memory > 0 ? `roots unpacked in RAM up to ${(memory / 2 ** 30).toFixed(1)} GiB together` : 'roots unpacked on disk';
        const artifacts = artifactStore ? `; artifacts in ${describeS3StoreLocation(artifactStore)}` : '';
        io.out(`cfs server listening on ${runtime.url} (data: ${runtime.dataDir}${artifacts}; up to ${maxConcurrentRuns} runner(s) at once, ${runnerTimeoutSeconds}s each, layer network ${runnerNetwork}, ${inRam})`);
        io.out(`cfs server: API token in ${join(runtime.dataDir, 'api-token')} (\`cfs auth token\` prints it); the CLI of this user finds it there`);
        // A one-time link, as Jupyter prints one: opening it trades the code for the dashboard's cookie.
        io.out(`cfs server: open the dashboard at ${runtime.publicUrl}/login?code=${runtime.login.mintCode()}`);
        const onHangup = () => {
          try {
            runtime.reloadTls();
            io.out('cfs server: SIGHUP, TLS certificate and key reloaded');
          } catch (error) {
            io.err(`cfs server: SIGHUP, TLS certificate and key not reloaded (the old ones stay): ${(error as Error).message}`);
          }
        };
        // Only with TLS: otherwise SIGHUP keeps its default (a closed terminal ends the server).
        if (tls || options.tlsSelfSigned) process.on('SIGHUP', onHangup);
        const received = await signal;
        process.off('SIGHUP', onHangup);
        io.out(`cfs server: ${received}, shutting down`);
        await runtime.close();
        io.out('cfs server: stopped');
      } finally {
        release();
      }
    });
}
