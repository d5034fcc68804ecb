import { Command } from 'commander';
import { v3InputToV2Input } from '../../core/sessions/session-conversion.ts';
import { ApiClient, cfsBase } from '../api-client.ts';
import { processIo, type CliIo } from '../io.ts';
import { outputOptions, printResult, withOutputOptions } from '../output.ts';
import { sessionSummary } from '../summaries.ts';
import { addChangesCommand } from './session-changes.ts';
import { addDebugCommands } from './session-debug.ts';
import { addSessionDeleteAll, addSessionList } from './session-listing.ts';
import { addLogsCommand } from './session-logs.ts';
import { createBody, withSessionOptions } from './session-options.ts';
import { sessionPlanCommand } from './session-plan.ts';
import { addWaitCommand, waitForSession } from './session-wait.ts';

/**
 * `cfs sessions create|describe|delete|list|deleteall`, mirroring `cray cfs sessions` (v3 unless
 * `--api-version 2`).
 */
export function sessionsCommand(io: CliIo = processIo): Command {
  const sessions = new Command('sessions').description('image customization sessions (CFS)');

  withOutputOptions(
    withSessionOptions(sessions.command('create').description('create an image customization session')).option(
      '--wait',
      'then follow the session until it ends, showing each step live; exit code 0 only when it succeeded',
    ),
  ).action(async (_options, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    const body = createBody(command);
    const api = new ApiClient(io);
    const { body: created } = await api.request('POST', `${cfsBase(apiVersion)}/sessions`, { body: apiVersion === '2' ? v3InputToV2Input(body as never) : body });
    if (command.opts<{ wait?: boolean }>().wait) return void (await waitForSession(io, String(body.name), { format }));
    await printResult(io, format, created, sessionSummary);
  });

  withOutputOptions(sessions.command('describe').description('show a session').argument('<name>', 'session name')).action(
    async (name: string, _options, command: Command) => {
      const { format, apiVersion } = outputOptions(command);
      const { body } = await new ApiClient(io).request('GET', `${cfsBase(apiVersion)}/sessions/${encodeURIComponent(name)}`);
      await printResult(io, format, body, sessionSummary);
    },
  );

  addSessionList(sessions, io);

  withOutputOptions(sessions.command('delete').description('delete a session, stopping it if it runs').argument('<name>', 'session name')).action(
    async (name: string, _options, command: Command) => {
      const { format, apiVersion } = outputOptions(command);
      await new ApiClient(io).request('DELETE', `${cfsBase(apiVersion)}/sessions/${encodeURIComponent(name)}`);
      if (format === 'human') io.out(`Deleted session ${name}.`);
    },
  );

  addSessionDeleteAll(sessions, io);

  sessions.addCommand(sessionPlanCommand(io));
  addWaitCommand(sessions, io);
  addLogsCommand(sessions, io);
  addChangesCommand(sessions, io);
  addDebugCommands(sessions, io);
  return sessions;
}
