import { Command } from 'commander';
import { CliError, processIo, type CliIo } from '../io.ts';

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

/**
 * `cfs server [--port 8787] [--data-dir ./.cfs]`: the whole service on this machine, the API on
 * 127.0.0.1 and every record and image under the data directory. SIGTERM or SIGINT close it
 * cleanly (the database lock is released, so the directory can be reopened at once).
 */
export function serverCommand(io: CliIo = processIo): Command {
  return new Command('server')
    .description('run the service on this machine: the API on 127.0.0.1, data under --data-dir')
    .option('--port <port>', 'TCP port on 127.0.0.1 (0 picks a free one)', '8787')
    .option('--data-dir <dir>', 'where sessions, configurations and images are kept', './.cfs')
    .action(async (options: { port: string; dataDir: string }) => {
      const port = Number(options.port);
      if (!/^\d+$/.test(options.port) || port > 65535) throw new CliError(`--port takes a port number from 0 to 65535, not '${options.port}'`);
      const signal = firstSignal();
      // The runtime (dynalite, the AWS SDK, the engine) is loaded only by this command.
      const { startEmbeddedRuntime } = await import('../../server/embedded-runtime.ts');
      let runtime: Awaited<ReturnType<typeof startEmbeddedRuntime>>;
      try {
        runtime = await startEmbeddedRuntime({ dataDir: options.dataDir, port });
      } catch (error) {
        const message = (error as Error).message;
        if (/LOCK|lock/.test(message)) throw new CliError(`the data directory ${options.dataDir} is in use by another cfs server (${message})`);
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(`port ${port} on 127.0.0.1 is already in use; choose another with --port`);
        throw error;
      }
      io.out(`cfs server listening on ${runtime.url} (data: ${runtime.dataDir})`);
      const received = await signal;
      io.out(`cfs server: ${received}, shutting down`);
      await runtime.close();
      io.out('cfs server: stopped');
    });
}
