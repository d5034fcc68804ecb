import { Command, Option } from 'commander';
import { z } from 'zod';
import { SETTING_NAMES, V3_TO_V2_OPTION_NAMES, type CfsOptionName } from '../../core/options/options-schemas.ts';
import { ApiClient, cfsBase } from '../api-client.ts';
import { CliError, processIo, type CliIo } from '../io.ts';
import { booleanFlag, matchingFlag, parseOptions } from '../option-schemas.ts';
import { outputOptions, printResult, withOutputOptions } from '../output.ts';

export type ValueKind = 'text' | 'integer' | 'boolean' | 'list' | 'level';

/** Every CFS option `cfs options update` sets, by v3 name, with how its command-line value is read (as `cray cfs options update` takes them). */
const SETTABLE: Array<[CfsOptionName, ValueKind, string]> = [
  ['session_ttl', 'text', 'how long completed sessions are kept (e.g. 7d; empty keeps them)'],
  ['debug_wait_time', 'integer', 'seconds a failed debug_on_failure session is held (v3 only)'],
  ['default_page_size', 'integer', 'page size of v3 listings without --limit (and the v2 list limit) (v3 only)'],
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
export const flagOf = (name: string) => `--${name.replaceAll('_', '-')}`;
export const attributeOf = (name: string) => name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/** How a flag's text becomes the value's JSON. */
export function valueSchema(kind: ValueKind, flag: string): z.ZodType {
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

/** The flags of `names` (commander's attribute names), read by their kinds; at least one must be given. */
export function flagsSchema(entries: Array<[string, ValueKind, string]>, what: string) {
  return z
    .object(Object.fromEntries(entries.map(([name, kind]) => [attributeOf(name), valueSchema(kind, flagOf(name)).optional()])))
    .refine((values) => Object.values(values).some((value) => value !== undefined), {
      error: `give at least one ${what} to set (${entries.map(([name]) => flagOf(name)).join(', ')})`,
    });
}

const updateOptions = flagsSchema(SETTABLE, 'option');

/**
 * The PATCH body from the flags given (v3 names, or v2's when speaking v2). A v3-only option
 * in v2 and one of this product's settings (moved to `cfs settings update`) are refused here,
 * saying where they are set, before anything is sent.
 */
export function optionsPatchBody(options: Record<string, unknown>, apiVersion: '2' | '3'): Record<string, unknown> {
  const moved = SETTING_NAMES.find((name) => options[attributeOf(name)] !== undefined);
  if (moved) throw new CliError(`${flagOf(moved)} is not a CFS option: it is this product's own setting, set with 'cfs settings update ${flagOf(moved)}'`);
  const values = parseOptions(updateOptions, options);
  const body: Record<string, unknown> = {};
  for (const [name] of SETTABLE) {
    const value = values[attributeOf(name)];
    if (value === undefined) continue;
    const v2 = V3_TO_V2_OPTION_NAMES[name];
    if (apiVersion === '2' && !v2) throw new CliError(`${flagOf(name)} is a v3 option (CFS v2 has none of that name): leave out --api-version 2`);
    body[apiVersion === '3' ? name : v2!] = value;
  }
  return body;
}

/** `describe` and `update`: every value as `name  value`, in the spelling the API answered. */
export function valuesSummary(value: unknown): string {
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
  const width = Math.max(...entries.map(([name]) => name.length));
  const show = (v: unknown) => (v === null ? 'default' : Array.isArray(v) ? v.join(',') : v === '' ? "''" : String(v));
  return entries.map(([name, v]) => `${name.padEnd(width)}  ${show(v)}`).join('\n');
}

/** `cfs options describe|update`, mirroring `cray cfs options` (v3 unless `--api-version 2`): the CFS options only; this product's own are `cfs settings`. */
export function optionsCommand(io: CliIo = processIo): Command {
  const options = new Command('options').description("CFS service options (session TTL, debug wait, page size, ...); this product's own settings are 'cfs settings'");

  withOutputOptions(options.command('describe').description('show every CFS option in force (V3Options, or V2Options with --api-version 2)')).action(async (_options, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    const { body } = await new ApiClient(io).request('GET', `${cfsBase(apiVersion)}/options`);
    await printResult(io, format, body, valuesSummary);
  });

  const update = options.command('update').description('set one or more CFS options (the others keep their values)');
  for (const [name, , description] of SETTABLE) update.option(`${flagOf(name)} <value>`, description);
  // The settings' flags once lived here: still read, so that the refusal says where they went.
  for (const name of SETTING_NAMES) update.addOption(new Option(`${flagOf(name)} <value>`).hideHelp());
  withOutputOptions(update).action(async (flags: Record<string, unknown>, command: Command) => {
    const { format, apiVersion } = outputOptions(command);
    const body = optionsPatchBody(flags, apiVersion);
    const { body: answer } = await new ApiClient(io).request('PATCH', `${cfsBase(apiVersion)}/options`, { body });
    await printResult(io, format, answer, valuesSummary);
  });

  return options;
}
