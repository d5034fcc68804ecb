import { Option, type Command } from 'commander';
import { CliError, type CliIo } from './io.ts';

export const OUTPUT_FORMATS = ['human', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The options every API command takes: `--format` and `--api-version`. */
export interface ApiCommandOptions {
  format: OutputFormat;
  apiVersion: '2' | '3';
}

/** Adds `--format json|yaml|human` (human by default) and `--api-version 2|3` (3 by default). */
export function withOutputOptions(command: Command): Command {
  return command
    .addOption(new Option('--format <format>', 'output format: human, json (the API JSON, for jq) or yaml').choices(OUTPUT_FORMATS).default('human'))
    .addOption(new Option('--api-version <version>', 'CFS API version to speak').choices(['2', '3']).default('3'));
}

/** The output options of a command, from its own flags or the program's. */
export function outputOptions(command: Command): ApiCommandOptions {
  const opts = command.optsWithGlobals<Partial<ApiCommandOptions>>();
  return { format: opts.format ?? 'human', apiVersion: opts.apiVersion ?? '3' };
}

/**
 * Prints an API answer: `json` exactly as the API sent it (so `| jq` works as in the CFS
 * docs), `yaml` the same data as YAML, `human` through the given summary.
 */
export async function printResult(io: CliIo, format: OutputFormat, value: unknown, human: (value: unknown) => string): Promise<void> {
  if (format === 'json') return io.out(JSON.stringify(value, null, 2));
  if (format === 'yaml') {
    // Loaded only when asked for, to keep every other command's start fast.
    const { stringify } = await import('yaml');
    return io.out(stringify(value).trimEnd());
  }
  io.out(human(value));
}

/** Left-aligned columns with a header row, for list summaries. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `key=value,key2=value2` as a map (the `--tags` syntax of cray and the API's tag filter). */
export function parseKeyValueList(text: string, option: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`${option} takes key=value pairs separated by commas, not '${pair}'`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

/** A boolean option value, case-insensitive (`true`, `True`, `false`). */
export function parseBoolean(text: string, option: string): boolean {
  const value = text.trim().toLowerCase();
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new CliError(`${option} takes true or false, not '${text}'`);
}
