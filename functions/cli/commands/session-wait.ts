import type { Command } from 'commander';
import { z } from 'zod';
import { heldCommandLine } from '../../runner/debug-hold.ts';
import { ApiClient, cfsBase } from '../api-client.ts';
import { CliError, processIo, type CliIo } from '../io.ts';
import { matchingFlag, parseOptions } from '../option-schemas.ts';
import { outputOptions, printResult, withOutputOptions, type OutputFormat } from '../output.ts';
import { PlainRenderer, TerminalRenderer, type ProgressRenderer } from '../progress/renderers.ts';
import { outcomeLine, resumeHint, type SessionView } from '../progress/session-steps.ts';
import { terminalFor } from '../progress/terminal.ts';

export interface WaitOptions {
  format: OutputFormat;
  /** Give up after this many seconds (exit 1); none by default. */
  timeoutSeconds?: number;
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `wait`'s flags: `--timeout` in whole seconds, at least one. */
const waitOptions = z.object({
  timeout: matchingFlag(/^0*[1-9]\d*$/, '--timeout takes a whole number of seconds').transform(Number).optional(),
});

/**
 * Follows a session until it is complete, showing its steps live in the human format (redrawn
 * with spinners on a terminal, one plain line per step change otherwise), then prints how it
 * ended (the session itself in json or yaml). Resolves only when the session succeeded; a
 * failed session (or the timeout) is a CliError, so the exit code is 0 only on success. A
 * failed session held for debugging (`debug_on_failure`) ends the wait when its hold starts,
 * though it stays `running`: the wait prints how to enter it and fails (exit 1) then.
 */
export async function waitForSession(io: CliIo, name: string, options: WaitOptions): Promise<SessionView> {
  const api = new ApiClient(io);
  const terminal = terminalFor(io);
  const renderer: ProgressRenderer | undefined =
    options.format !== 'human' ? undefined : terminal.isTTY ? new TerminalRenderer(terminal) : new PlainRenderer((line) => io.out(line));
  const deadline = options.timeoutSeconds === undefined ? undefined : Date.now() + options.timeoutSeconds * 1000;
  const spinner = terminal.isTTY && renderer ? setInterval(() => renderer.tick(new Date()), 100) : undefined;
  // Ctrl-C must not leave the terminal without its cursor.
  const interrupted = () => {
    terminal.write('\x1b[?25h\n');
    process.exit(130);
  };
  if (spinner && io === processIo) process.once('SIGINT', interrupted);
  let session: SessionView = { name };
  try {
    for (;;) {
      const { body } = await api.request<SessionView>('GET', `${cfsBase('3')}/sessions/${encodeURIComponent(name)}`);
      session = body!;
      renderer?.update(session, new Date());
      if (session.status?.session?.status === 'complete' || heldNow(session)) break;
      if (deadline !== undefined && Date.now() > deadline) {
        throw new CliError(`session ${name} did not complete within ${options.timeoutSeconds}s (it is ${session.status?.session?.status ?? 'unknown'}; it goes on running)`);
      }
      await sleep(options.pollMs ?? 500);
    }
  } finally {
    if (spinner) clearInterval(spinner);
    process.off('SIGINT', interrupted);
    renderer?.finish(new Date());
  }
  if (options.format !== 'human') await printResult(io, options.format, session, () => '');
  const hold = heldNow(session);
  if (hold) {
    // The failure is known and the workspace waits for someone: say how to enter it, and fail.
    if (options.format === 'human') io.out(holdLines(session, hold).join('\n'));
    throw new CliError(`${outcomeLine(session)}; held for debugging until ${hold.until}: ${enterLine(session.name, hold)}`);
  }
  if (session.status?.session?.succeeded !== 'true') {
    const hint = resumeHint(session);
    throw new CliError(hint ? `${outcomeLine(session)}\n${hint}` : outcomeLine(session));
  }
  if (options.format === 'human') io.out(outcomeLine(session));
  return session;
}

/** A failed session's debug hold while it lasts (the session is `running` then, its failure recorded). */
function heldNow(session: SessionView): NonNullable<NonNullable<SessionView['status']>['debug']> | undefined {
  const hold = session.status?.debug;
  return hold && !hold.released_at ? hold : undefined;
}

/** The command that enters the held root of the failed image (else the first). */
function enterLine(name: string, hold: NonNullable<ReturnType<typeof heldNow>>, failedImage?: string): string {
  const image = hold.images.find((i) => i.image_id === failedImage) ?? hold.images[0];
  return image ? heldCommandLine(name, { enter: image.image_id }) : `cfs sessions debug ${name}`;
}

/** What a wait that ends at a hold prints: how it failed, until when it is held and how to enter it. */
function holdLines(session: SessionView, hold: NonNullable<ReturnType<typeof heldNow>>): string[] {
  return [
    outcomeLine(session),
    `its workspace is held for debugging until ${hold.until} (the session stays running until then); as root, on the server's machine:`,
    `  ${enterLine(session.name, hold, session.status?.failure?.image_id)}`,
    `  cfs sessions debug ${session.name}     # every root and layer`,
    `  cfs sessions release ${session.name}   # end the hold now`,
  ];
}

/** `cfs sessions wait NAME [--timeout SECONDS]`. */
export function addWaitCommand(sessions: Command, io: CliIo = processIo): void {
  withOutputOptions(
    sessions
      .command('wait')
      .description('follow a session until it ends, showing each step live; exit code 0 only when it succeeded')
      .argument('<name>', 'session name')
      .option('--timeout <seconds>', 'give up after this many seconds (the session goes on)'),
  ).action(async (name: string, flags: unknown, command: Command) => {
    const { format } = outputOptions(command);
    const { timeout } = parseOptions(waitOptions, flags);
    await waitForSession(io, name, { format, timeoutSeconds: timeout });
  });
}
