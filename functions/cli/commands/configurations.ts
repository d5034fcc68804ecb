import { Command } from 'commander';
import { z } from 'zod';
import { ApiClient, cfsBase } from '../api-client.ts';
import { processIo, readJsonFile, type CliIo } from '../io.ts';
import { booleanFlag, parseOptions } from '../option-schemas.ts';
import { outputOptions, printResult, withOutputOptions } from '../output.ts';
import { configurationListSummary, configurationSummary } from '../summaries.ts';
import { listPages, printPagingHint } from './list-pages.ts';

/** `update` either sends a file or re-resolves the stored branches, never both. */
const updateChoice = z
  .object({ file: z.string().optional(), updateBranches: z.boolean().optional() })
  .refine((o) => Boolean(o.file) !== Boolean(o.updateBranches), { error: 'give either --file FILE or --update-branches' });

/** `update --file`: read only once the choice is made, so `--drop-branches` counts only with a file. */
const fileUpdateOptions = z.object({ file: z.string(), dropBranches: booleanFlag('--drop-branches').optional() });

/** `list`: paging is v3's; v2 lists everything (`--all` changes nothing there). */
const listOptions = z
  .object({ apiVersion: z.enum(['2', '3']), limit: z.string().optional(), afterId: z.string().optional(), inUse: booleanFlag('--in-use').optional(), all: z.boolean().optional() })
  .refine((o) => o.apiVersion === '3' || (o.limit === undefined && o.afterId === undefined), { error: '--limit and --after-id are v3 paging; v2 has none' });

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
  ).action(async (name: string, options: unknown, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    const choice = parseOptions(updateChoice, options);
    const path = `${cfsBase(apiVersion)}/configurations/${encodeURIComponent(name)}`;
    const api = new ApiClient(io);
    let answer;
    if (choice.updateBranches) {
      answer = await api.request('PATCH', path);
    } else {
      const { file, dropBranches } = parseOptions(fileUpdateOptions, options);
      answer = await api.request('PUT', path, { body: await readJsonFile(file), query: { drop_branches: dropBranches === undefined ? undefined : String(dropBranches) } });
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
      .description('list configurations (v3: one page, or every page with --all)')
      .option('--limit <n>', 'v3: at most this many (default: the default_page_size option)')
      .option('--after-id <name>', "v3: the configurations after this name (the previous page's next.after_id)")
      .option('--in-use <boolean>', 'true: only configurations a pending or running session or an automation names; false: only the others')
      .option('--all', 'v3: follow next to the last page (v2 always answers the whole list)'),
  ).action(async (options: object, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    const { limit, afterId, inUse, all } = parseOptions(listOptions, { ...options, apiVersion });
    const api = new ApiClient(io);
    const path = `${cfsBase(apiVersion)}/configurations`;
    const query = Object.fromEntries(
      Object.entries({ limit, after_id: afterId, in_use: inUse === undefined ? undefined : String(inUse) }).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
    if (apiVersion === '2') return printResult(io, format, (await api.request('GET', path, { query })).body, configurationListSummary);
    const { records, next } = await listPages(api, path, 'configurations', query, all === true);
    await printResult(io, format, { configurations: records, next }, configurationListSummary);
    printPagingHint(io, format, 'configurations', next);
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
