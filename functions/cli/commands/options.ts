import { Command } from 'commander';
import { z } from 'zod';
import { V3_TO_V2_OPTION_NAMES, type StoredOptions } from '../../core/options/options-schemas.ts';
import { ApiClient, cfsBase } from '../api-client.ts';
import { processIo, type CliIo } from '../io.ts';
import { booleanFlag, matchingFlag, parseOptions } from '../option-schemas.ts';
import { outputOptions, printResult, withOutputOptions } from '../output.ts';

type OptionName = keyof StoredOptions;
type ValueKind = 'text' | 'integer' | 'boolean' | 'list' | 'level';

/** Every option `cfs options update` sets, by v3 name, with how its command-line value is read. */
const SETTABLE: Array<[OptionName, ValueKind, string]> = [
  ['session_ttl', 'text', 'how long completed sessions are kept (e.g. 7d; empty keeps them)'],
  ['debug_wait_time', 'integer', 'seconds a failed debug_on_failure session is held'],
  ['default_page_size', 'integer', 'page size of v3 listings without --limit (and the v2 list limit)'],
  ['image_wait_timeout', 'integer', 'seconds a session waits for its source images'],
  ['image_poll_interval', 'integer', 'seconds between checks for missing images'],
  ['squashfs_compressor', 'text', 'result compressor: source, gzip, xz, lzo, lz4 or zstd'],
  ['squashfs_compression_level', 'level', "compression level, or 'default'"],
  ['clone_url_schemes', 'list', 'comma-separated clone URL schemes layers may use (e.g. https,ssh)'],
  ['hardware_sync_interval', 'integer', 'stored for compatibility (no hardware sync here)'],
  ['batcher_check_interval', 'integer', 'stored for compatibility (no batcher here)'],
  ['batch_size', 'integer', 'stored for compatibility (no batcher here)'],
  ['batch_window', 'integer', 'stored for compatibility (no batcher here)'],
  ['default_batcher_retry_policy', 'integer', 'stored for compatibility (no batcher here)'],
  ['batcher_max_backoff', 'integer', 'stored for compatibility (no batcher here)'],
  ['batcher_disable', 'boolean', 'stored for compatibility (no batcher here)'],
  ['batcher_pending_timeout', 'integer', 'stored for compatibility (no batcher here)'],
  ['logging_level', 'text', 'stored for compatibility: DEBUG, INFO, WARNING or ERROR'],
];

/** `session_ttl` -> `--session-ttl`; commander's attribute name is the camelCase of it. */
const flagOf = (name: string) => `--${name.replaceAll('_', '-')}`;
const attributeOf = (name: string) => name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/** How a flag's text becomes the option's JSON value. */
function valueSchema(kind: ValueKind, flag: string): z.ZodType {
  switch (kind) {
    case 'integer':
      return matchingFlag(/^\s*-?\d+\s*$/, `${flag} takes an integer`).transform(Number);
    case 'boolean':
      return booleanFlag(flag);
    case 'list':
      return z.string().transform((raw) => raw.split(',').map((s) => s.trim()).filter(Boolean));
    case 'level':
      // `default` (any case) clears the level; anything else is an integer.
      return matchingFlag(/^\s*(?:default|-?\d+)\s*$/i, `${flag} takes an integer`).transform((raw) => (raw.trim().toLowerCase() === 'default' ? null : Number(raw)));
    default:
      return z.string();
  }
}

/** Every settable option's flag (commander's attribute name), read by its kind; the flags given are checked in SETTABLE's order. */
const updateOptions = z
  .object(Object.fromEntries(SETTABLE.map(([name, kind]) => [attributeOf(name), valueSchema(kind, flagOf(name)).optional()])))
  .refine((values) => Object.values(values).some((value) => value !== undefined), {
    error: `give at least one option to set (${SETTABLE.map(([name]) => flagOf(name)).join(', ')})`,
  });

/** The PATCH body from the flags given (v3 names, or v2's when speaking v2). */
export function optionsPatchBody(options: Record<string, unknown>, apiVersion: '2' | '3'): Record<string, unknown> {
  const values = parseOptions(updateOptions, options);
  const body: Record<string, unknown> = {};
  for (const [name] of SETTABLE) {
    const value = values[attributeOf(name)];
    if (value !== undefined) body[apiVersion === '3' ? name : V3_TO_V2_OPTION_NAMES[name]] = value;
  }
  return body;
}

/** `cfs options describe`: every option as `name  value`, v3 or v2 spelling as the API answered. */
function optionsSummary(value: unknown): string {
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
  const width = Math.max(...entries.map(([name]) => name.length));
  const show = (v: unknown) => (v === null ? 'default' : Array.isArray(v) ? v.join(',') : v === '' ? "''" : String(v));
  return entries.map(([name, v]) => `${name.padEnd(width)}  ${show(v)}`).join('\n');
}

/** `cfs options describe|update`, mirroring `cray cfs options` (v3 unless `--api-version 2`). */
export function optionsCommand(io: CliIo = processIo): Command {
  const options = new Command('options').description('service options (CFS): page size, image waits, compression, clone URL schemes, ...');

  withOutputOptions(options.command('describe').description('show every option in force')).action(async (_options, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    const { body } = await new ApiClient(io).request('GET', `${cfsBase(apiVersion)}/options`);
    await printResult(io, format, body, optionsSummary);
  });

  const update = options.command('update').description('set one or more options (the others keep their values)');
  for (const [name, , description] of SETTABLE) update.option(`${flagOf(name)} <value>`, description);
  withOutputOptions(update).action(async (flags: Record<string, unknown>, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    const body = optionsPatchBody(flags, apiVersion);
    const { body: answer } = await new ApiClient(io).request('PATCH', `${cfsBase(apiVersion)}/options`, { body });
    await printResult(io, format, answer, optionsSummary);
  });

  return options;
}
