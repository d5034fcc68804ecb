import type { Command } from 'commander';
import { z } from 'zod';
import { ApiClient, cfsBase } from '../api-client.ts';
import type { CliIo } from '../io.ts';
import { parseOptions } from '../option-schemas.ts';
import { outputOptions, printResult, withOutputOptions } from '../output.ts';
import { sessionListSummary } from '../summaries.ts';
import { listPages, printPagingHint } from './list-pages.ts';

/** The session filters as `cray cfs sessions list` takes them: flag -> query parameter. */
const FILTER_FLAGS: Array<[flag: string, parameter: string, description: string]> = [
  ['--status <status>', 'status', 'pending, running or complete'],
  ['--succeeded <value>', 'succeeded', 'none, true, false or unknown'],
  ['--name-contains <text>', 'name_contains', 'only names containing this'],
  ['--min-age <age>', 'min_age', 'only sessions older than this (e.g. 1h, 2d, 3w)'],
  ['--max-age <age>', 'max_age', 'only sessions younger than this'],
  ['--tags <pairs>', 'tags', 'key=value[,key=value...]: only sessions with all of these tags'],
];
const V2_ONLY: Array<[string, string, string]> = [['--age <age>', 'age', 'v2 only, deprecated: the same as --min-age']];
const PAGING: Array<[string, string, string]> = [
  ['--limit <n>', 'limit', 'v3: at most this many sessions (default: the default_page_size option)'],
  ['--after-id <name>', 'after_id', "v3: the sessions after this name (the previous page's next.after_id)"],
];

const attributeOf = (flag: string) => flag.slice(2).split(' ')[0]!.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/**
 * The schema of the flags at an API version: each a text, but a v3-only flag refused with
 * `--api-version 2` and a v2-only one with 3 (the first given, in the flags' order).
 */
function flagsSchema(flags: Array<[string, string, string]>, apiVersion: '2' | '3', v3Only: Array<[string, string, string]>, v2Only: Array<[string, string, string]>) {
  const refused = (flag: string) => {
    const name = flag.split(' ')[0]!;
    if (apiVersion === '2' && v3Only.some(([f]) => f === flag)) return `${name} is v3 paging; v2 has none (drop --api-version 2)`;
    if (apiVersion === '3' && v2Only.some(([f]) => f === flag)) return `${name} is v2 only; use --min-age`;
    return undefined;
  };
  return z.object(
    Object.fromEntries(
      flags.map(([flag]) => {
        const reason = refused(flag);
        return [attributeOf(flag), reason === undefined ? z.string().optional() : z.undefined({ error: reason }).optional()];
      }),
    ),
  );
}

/** The query of the flags given, by the flags' query parameter names. */
function query(command: Command, flags: Array<[string, string, string]>, apiVersion: '2' | '3', v3Only: Array<[string, string, string]>, v2Only: Array<[string, string, string]>) {
  const options = parseOptions(flagsSchema(flags, apiVersion, v3Only, v2Only), command.opts());
  return Object.fromEntries(flags.map(([flag, parameter]) => [parameter, options[attributeOf(flag)]]).filter(([, value]) => value !== undefined)) as Record<string, string>;
}

function addFlags(command: Command, flags: Array<[string, string, string]>): Command {
  for (const [flag, , description] of flags) command.option(flag, description);
  return command;
}

/**
 * `cfs sessions list [filters] [--limit N --after-id NAME] [--all]`: one v3 page (with how to go
 * on), every page with `--all`, or the whole v2 list (which v2 answers at once).
 */
export function addSessionList(sessions: Command, io: CliIo): void {
  const flags = [...FILTER_FLAGS, ...V2_ONLY, ...PAGING];
  withOutputOptions(addFlags(sessions.command('list').description('list sessions, filtered and paged'), flags))
    .option('--all', 'v3: follow next to the last page (v2 always answers the whole list)')
    .action(async (options: { all?: boolean }, command: Command) => {
      const { format, apiVersion } = outputOptions(command);
      const api = new ApiClient(io);
      const path = `${cfsBase(apiVersion)}/sessions`;
      const params = query(command, flags, apiVersion, PAGING, V2_ONLY);
      if (apiVersion === '2') return printResult(io, format, (await api.request('GET', path, { query: params })).body, sessionListSummary);
      const { records, next } = await listPages(api, path, 'sessions', params, options.all === true);
      await printResult(io, format, { sessions: records, next }, sessionListSummary);
      printPagingHint(io, format, 'sessions', next);
    });
}

/** `cfs sessions deleteall [filters]`: deletes every matching session (`--status` defaults to complete on the server). */
export function addSessionDeleteAll(sessions: Command, io: CliIo): void {
  const flags = [...FILTER_FLAGS, ...V2_ONLY];
  withOutputOptions(
    addFlags(sessions.command('deleteall').description('delete every session matching the filters (status defaults to complete); running ones are stopped and cleaned up'), flags),
  ).action(async (_options, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    const { body } = await new ApiClient(io).request('DELETE', `${cfsBase(apiVersion)}/sessions`, { query: query(command, flags, apiVersion, [], V2_ONLY) });
    if (format !== 'human') return printResult(io, format, body ?? {}, () => '');
    const names = (body as { session_ids?: string[] } | undefined)?.session_ids;
    if (!names) return io.out('Deleted the matching sessions.');
    io.out(names.length ? `Deleted ${names.length} session${names.length === 1 ? '' : 's'}: ${names.join(', ')}` : 'No session matched; nothing deleted.');
  });
}
