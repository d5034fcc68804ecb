import { Command, CommanderError } from 'commander';
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dataDirFrom } from '../server/api-token.ts';
import { LOCAL_ENV, SYSTEM_ENV } from '../server/environment.ts';
import { ApiError } from './api-client.ts';
import { authCommand } from './commands/auth.ts';
import { automationsCommand } from './commands/automations.ts';
import { configurationsCommand } from './commands/configurations.ts';
import { sourcesCommand } from './commands/sources.ts';
import { imagesCommand } from './commands/images.ts';
import { optionsCommand } from './commands/options.ts';
import { serverCommand } from './commands/server.ts';
import { settingsCommand } from './commands/settings.ts';
import { sessionsCommand } from './commands/sessions.ts';
import { CliError, processIo, type CliIo } from './io.ts';

/**
 * The `cfs` program: one Command per file under commands/, all registered here. Commands
 * take the CliIo so tests run them in-process.
 */
export function buildProgram(io: CliIo = processIo): Command {
  const program = new Command('cfs')
    .description('CFS-compatible image customization: sessions, configurations and images (talks to CFS_API_URL, default http://127.0.0.1:8787)')
    .option('--data-dir <dir>', `the data directory of the server to talk to, whose api-token file the CLI sends (default ${LOCAL_ENV.DATA_DIR}, else ./.cfs; ${LOCAL_ENV.API_TOKEN} wins)`)
    .showHelpAfterError();
  // The global --data-dir reaches every command through the environment the API client reads (and `cfs server`'s own option).
  program.hook('preAction', () => {
    const dataDir = program.opts<{ dataDir?: string }>().dataDir;
    if (dataDir) io.env[LOCAL_ENV.DATA_DIR] = dataDirFrom(dataDir, io.env);
  });
  program.addCommand(sessionsCommand(io));
  program.addCommand(configurationsCommand(io));
  program.addCommand(sourcesCommand(io));
  program.addCommand(automationsCommand(io));
  program.addCommand(imagesCommand(io));
  program.addCommand(optionsCommand(io));
  program.addCommand(settingsCommand(io));
  program.addCommand(serverCommand(io));
  program.addCommand(authCommand(io));
  return program;
}

function applyToAll(command: Command, io: CliIo): void {
  command.exitOverride();
  command.configureOutput({
    writeOut: (s) => io.out(s.trimEnd()),
    writeErr: (s) => io.err(s.trimEnd()),
    // Commander echoes a bad argument back in its error; a newline in it must not split the line.
    // Its own "Did you mean" hint goes on the same line.
    outputError: (s, write) => write(oneLine(s.trimEnd().replace(/\n(?=\(Did you mean )/, ' '))),
  });
  for (const sub of command.commands) applyToAll(sub, io);
}

/** Control characters in a message (a name echoed back with a newline in it) are escaped, so an error stays one line. */
function oneLine(message: string): string {
  return message.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '\\n' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * Runs the program on `argv` (user arguments, without node and the script) and returns the exit
 * code. The one central error handler: an API error prints `Error: <title>: <detail>` (as
 * cray does) and exits 2; any other failure prints `Error: <message>` and exits 1.
 */
export async function runCli(argv: string[], io: CliIo = processIo, program: Command = buildProgram(io)): Promise<number> {
  applyToAll(program, io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof ApiError) {
      io.err(`Error: ${oneLine(error.message)}`);
      return 2;
    }
    if (error instanceof CliError) {
      io.err(`Error: ${oneLine(error.message)}`);
      return error.exitCode;
    }
    io.err(`Error: ${oneLine((error as Error).message ?? String(error))}`);
    return 1;
  }
}

/** True when this module is the program being run (the bundle behind bin/cfs.mjs, or this file itself). */
function isEntryPoint(): boolean {
  const self = fileURLToPath(import.meta.url);
  if (/[\\/]dist[\\/]cli\.mjs$/.test(self)) return true;
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === self;
  } catch {
    return false;
  }
}

/**
 * Node's fetch trusts the system's CAs and NODE_EXTRA_CA_CERTS, which Node reads only at start:
 * with CFS_CA_BUNDLE set, the CLI runs itself again with the bundle as NODE_EXTRA_CA_CERTS (so
 * the API calls and the artifact transfers alike trust it). Returns the child's exit code, or
 * undefined when no re-run is needed.
 */
function rerunTrustingBundle(): number | undefined {
  const bundle = process.env[LOCAL_ENV.CA_BUNDLE];
  const extra = SYSTEM_ENV.NODE_EXTRA_CA_CERTS;
  if (!bundle || process.env[extra] === bundle) return undefined;
  if (process.env[extra]) process.stderr.write(`Warning: ${LOCAL_ENV.CA_BUNDLE} replaces ${extra} for this command\n`);
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, [extra]: bundle } });
  return child.status ?? 1;
}

if (isEntryPoint()) {
  const code = rerunTrustingBundle() ?? (await runCli(process.argv.slice(2)));
  // Exit now: an idle keep-alive connection must not hold a finished command open.
  process.exit(code);
}
