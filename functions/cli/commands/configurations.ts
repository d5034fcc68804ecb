import { Command } from 'commander';
import { ApiClient, cfsBase } from '../api-client.ts';
import { CliError, processIo, readJsonFile, type CliIo } from '../io.ts';
import { outputOptions, parseBoolean, printResult, withOutputOptions } from '../output.ts';
import { configurationListSummary, configurationSummary } from '../summaries.ts';

/**
 * `cfs configurations update|describe|list|delete`, mirroring `cray cfs configurations`:
 * `update --file` sends the file's JSON as it is (v2 or v3 spelling); the server resolves
 * branches to commits.
 */
export function configurationsCommand(io: CliIo = processIo): Command {
  const configurations = new Command('configurations').description('configurations: ordered Ansible layers (CFS)');

  withOutputOptions(
    configurations
      .command('update')
      .description('create or replace a configuration from a JSON file, or re-resolve its branches')
      .argument('<name>', 'configuration name')
      .option('--file <file>', 'the configuration JSON (as `cray cfs configurations update --file`)')
      .option('--drop-branches [boolean]', 'store only the resolved commits, not the branches')
      .option('--update-branches', 're-resolve every branch to its current commit (no file)'),
  ).action(async (name: string, options: { file?: string; dropBranches?: boolean | string; updateBranches?: boolean }, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    if (Boolean(options.file) === Boolean(options.updateBranches)) throw new CliError('give either --file FILE or --update-branches');
    const path = `${cfsBase(apiVersion)}/configurations/${encodeURIComponent(name)}`;
    const api = new ApiClient(io);
    let answer;
    if (options.updateBranches) {
      answer = await api.request('PATCH', path);
    } else {
      const drop = options.dropBranches === undefined ? undefined : typeof options.dropBranches === 'boolean' ? options.dropBranches : parseBoolean(options.dropBranches, '--drop-branches');
      answer = await api.request('PUT', path, { body: await readJsonFile(options.file!), query: { drop_branches: drop === undefined ? undefined : String(drop) } });
    }
    await printResult(io, format, answer.body, configurationSummary);
  });

  withOutputOptions(configurations.command('describe').description('show a configuration').argument('<name>', 'configuration name')).action(
    async (name: string, _options, command: Command) => {
      const { format, apiVersion } = outputOptions(command);
      const { body } = await new ApiClient(io).request('GET', `${cfsBase(apiVersion)}/configurations/${encodeURIComponent(name)}`);
      await printResult(io, format, body, configurationSummary);
    },
  );

  withOutputOptions(
    configurations
      .command('list')
      .description('list configurations (v3: one page)')
      .option('--limit <n>', 'v3: at most this many (default: the default_page_size option)')
      .option('--after-id <name>', "v3: the configurations after this name (the previous page's next.after_id)"),
  ).action(async (options: { limit?: string; afterId?: string }, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    if (apiVersion === '2' && (options.limit !== undefined || options.afterId !== undefined)) throw new CliError('--limit and --after-id are v3 paging; v2 has none');
    const { body } = await new ApiClient(io).request('GET', `${cfsBase(apiVersion)}/configurations`, { query: { limit: options.limit, after_id: options.afterId } });
    await printResult(io, format, body, configurationListSummary);
    const next = (body as { next?: { after_id?: unknown } | null } | undefined)?.next;
    if (format === 'human' && next) io.out(`More configurations: add --after-id ${String(next.after_id)} for the next page.`);
  });

  withOutputOptions(configurations.command('delete').description('delete a configuration no running session uses').argument('<name>', 'configuration name')).action(
    async (name: string, _options, command: Command) => {
      const { format, apiVersion } = outputOptions(command);
      await new ApiClient(io).request('DELETE', `${cfsBase(apiVersion)}/configurations/${encodeURIComponent(name)}`);
      if (format === 'human') io.out(`Deleted configuration ${name}.`);
    },
  );

  return configurations;
}
