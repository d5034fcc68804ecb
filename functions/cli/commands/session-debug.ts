import type { Command } from 'commander';
import type { SessionDebugHold, SessionFailure } from '../../core/model/session.ts';
import { heldCommandLine, runHeldCommand, type HeldAction, type HeldRun } from '../../runner/debug-hold.ts';
import { ApiClient, cfsBase } from '../api-client.ts';
import { CliError, processIo, type CliIo } from '../io.ts';
import { outputOptions, printResult, withOutputOptions } from '../output.ts';

interface HeldSession {
  name: string;
  status?: { debug?: SessionDebugHold; failure?: Partial<SessionFailure> };
}

/**
 * What `cfs sessions debug` prints: how to enter each kept image root and rerun each layer by
 * hand. The commands are this CLI's own `--enter` and `--rerun`, made here from the image ids
 * and layer indexes (never a command line stored with the hold): they build the real command
 * from the run document when they run.
 */
export function debugInstructions(session: HeldSession): string {
  const hold = session.status?.debug;
  if (!hold) throw new CliError(`session ${session.name} holds no workspace: it did not fail in a layer with debug_on_failure set (cfs sessions create --debug-on-failure true)`);
  if (hold.released_at) throw new CliError(`session ${session.name}'s debug hold ended at ${hold.released_at}; its workspace is gone`);
  const failure = session.status?.failure;
  const failedLayer = failure?.layer;
  const lines = [
    `Session ${session.name} failed${failedLayer ? ` in layer '${failedLayer}'` : ''}${failure?.reason ? `: ${failure.reason}` : ''}`,
    `Its workspace is kept until ${hold.until} (\`cfs sessions release ${session.name}\` ends the hold now and removes it).`,
    'Run these as root on the machine that ran the session. Each builds its command now from the',
    "session's run document, in the same sandbox as the layer; nothing in the workspace runs outside it.",
    '',
    `  workspace  ${hold.workspace}`,
    '',
    'Enter an image root (a shell; add -- and a command to run that instead):',
  ];
  for (const image of hold.images) lines.push(`  # image ${image.image_id} (${image.root})`, `  ${heldCommandLine(session.name, { enter: image.image_id })}`);
  lines.push('', 'Rerun a layer by hand (the ansible-playbook command of the run):');
  for (const layer of hold.layers) {
    lines.push(`  # layer ${layer.index} '${layer.name}'${layer.name === failedLayer ? ' (failed)' : ''}`, `  ${heldCommandLine(session.name, { rerun: layer.index })}`);
  }
  return lines.join('\n');
}

/** The action `--enter` / `--rerun` ask for, or undefined when neither is given. */
function heldAction(options: { enter?: string; rerun?: string }, command: string[]): HeldAction | undefined {
  if (options.enter !== undefined && options.rerun !== undefined) throw new CliError('give --enter or --rerun, not both');
  if (options.rerun !== undefined) {
    if (!/^\d+$/.test(options.rerun)) throw new CliError(`--rerun takes a layer index (0, 1, ...), not '${options.rerun}'`);
    if (command.length > 0) throw new CliError('--rerun takes no command');
    return { rerun: Number(options.rerun) };
  }
  if (options.enter !== undefined) return { enter: options.enter, args: command };
  if (command.length > 0) throw new CliError('a command is run only with --enter IMAGE_ID');
  return undefined;
}

/** `cfs sessions debug NAME` and `cfs sessions release NAME`. */
export function addDebugCommands(sessions: Command, io: CliIo = processIo): void {
  withOutputOptions(
    sessions
      .command('debug')
      .description('show how to inspect a failed session whose workspace is held (debug_on_failure), or enter an image root or rerun a layer there')
      .argument('<name>', 'session name')
      .argument('[command...]', 'with --enter: what to run in the image root instead of a shell (after --)')
      .option('--enter <image-id>', "run a shell (or the command) in that image root, in the layer's sandbox")
      .option('--rerun <layer-index>', "run that layer's playbook again, in the layer's sandbox"),
  ).action(async (name: string, command: string[], options: { enter?: string; rerun?: string }, cmd: Command) => {
    const action = heldAction(options, command);
    const client = new ApiClient(io);
    if (action) {
      if (process.getuid?.() !== 0) throw new CliError('--enter and --rerun run the sandbox: run them as root on the machine that ran the session');
      const { body: run } = await client.request<HeldRun>('GET', `${cfsBase('3')}/sessions/${encodeURIComponent(name)}/debug`);
      let code: number;
      try {
        code = await runHeldCommand(run!, action);
      } catch (error) {
        throw new CliError(`cannot ${'enter' in action ? `enter image ${action.enter}` : `rerun layer ${action.rerun}`} of session ${name}: ${(error as Error).message}`);
      }
      if (code !== 0) throw new CliError(`the command exited with ${code}`, code);
      return;
    }
    const { format } = outputOptions(cmd);
    const { body } = await client.request<HeldSession>('GET', `${cfsBase('3')}/sessions/${encodeURIComponent(name)}`);
    if (format === 'human') return io.out(debugInstructions(body!));
    await printResult(io, format, body!.status?.debug ?? null, () => '');
  });

  withOutputOptions(
    sessions.command('release').description("end a failed session's debug hold now: its kept workspace is removed").argument('<name>', 'session name'),
  ).action(async (name: string, _options, command: Command) => {
    const { format } = outputOptions(command);
    const { body } = await new ApiClient(io).request<HeldSession>('POST', `${cfsBase('3')}/sessions/${encodeURIComponent(name)}/release`);
    if (format === 'human') return io.out(`Released session ${name}: its workspace ${body!.status?.debug?.workspace ?? ''} is removed.`);
    await printResult(io, format, body, () => '');
  });
}
