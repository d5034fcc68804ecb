import type { Command } from 'commander';
import type { SessionDebugHold, SessionFailure } from '../../core/model/session.ts';
import { ApiClient, cfsBase } from '../api-client.ts';
import { CliError, processIo, type CliIo } from '../io.ts';
import { outputOptions, printResult, withOutputOptions } from '../output.ts';

interface HeldSession {
  name: string;
  status?: { debug?: SessionDebugHold; failure?: Partial<SessionFailure> };
}

/** What `cfs sessions debug` prints: how to enter each kept image root and rerun each layer by hand. */
export function debugInstructions(session: HeldSession): string {
  const hold = session.status?.debug;
  if (!hold) throw new CliError(`session ${session.name} holds no workspace: it did not fail in a layer with debug_on_failure set (cfs sessions create --debug-on-failure true)`);
  if (hold.released_at) throw new CliError(`session ${session.name}'s debug hold ended at ${hold.released_at}; its workspace is gone`);
  const failure = session.status?.failure;
  const failedLayer = failure?.layer;
  const lines = [
    `Session ${session.name} failed${failedLayer ? ` in layer '${failedLayer}'` : ''}${failure?.reason ? `: ${failure.reason}` : ''}`,
    `Its workspace is kept until ${hold.until} (\`cfs sessions release ${session.name}\` ends the hold now and removes it).`,
    'Run these as root on the machine that ran the session:',
    '',
    `  workspace  ${hold.workspace}`,
    `  inventory  ${hold.inventory}`,
    '',
    'Enter an image root (in the same sandbox as the run: proc, sys and dev bound in, the host read-only):',
  ];
  for (const image of hold.images) lines.push(`  # image ${image.image_id} (${image.root})`, `  ${image.enter}`);
  lines.push('', 'Rerun a layer by hand (the exact ansible-playbook command of the run):');
  for (const layer of hold.layers) {
    lines.push(`  # layer ${layer.index} '${layer.name}'${layer.name === failedLayer ? ' (failed)' : ''}`, `  ${layer.command}`);
  }
  return lines.join('\n');
}

/** `cfs sessions debug NAME` and `cfs sessions release NAME`. */
export function addDebugCommands(sessions: Command, io: CliIo = processIo): void {
  withOutputOptions(
    sessions.command('debug').description('show how to inspect a failed session whose workspace is held (debug_on_failure)').argument('<name>', 'session name'),
  ).action(async (name: string, _options, command: Command) => {
    const { format } = outputOptions(command);
    const { body } = await new ApiClient(io).request<HeldSession>('GET', `${cfsBase('3')}/sessions/${encodeURIComponent(name)}`);
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
