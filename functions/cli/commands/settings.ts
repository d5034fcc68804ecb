import { Command, Option } from 'commander';
import { PRODUCT_SETTINGS_PATH, type SettingsPatch } from '../../core/options/options-schemas.ts';
import { ApiClient } from '../api-client.ts';
import { processIo, type CliIo } from '../io.ts';
import { parseOptions } from '../option-schemas.ts';
import { OUTPUT_FORMATS, outputOptions, printResult } from '../output.ts';
import { attributeOf, flagOf, flagsSchema, valuesSummary, type ValueKind } from './options.ts';

/** Every setting `cfs settings update` sets, with how its command-line value is read. */
const SETTABLE: Array<[keyof SettingsPatch, ValueKind, string]> = [
  ['image_wait_timeout', 'integer', 'seconds a session waits for its source images'],
  ['image_poll_interval', 'integer', 'seconds between checks for missing images'],
  ['squashfs_compressor', 'text', 'result compressor: source, gzip, xz, lzo, lz4 or zstd'],
  ['squashfs_compression_level', 'level', "compression level, or 'default'"],
  ['clone_url_schemes', 'list', 'comma-separated clone URL schemes layers may use (e.g. https,ssh)'],
  ['layer_cache', 'boolean', 'record and reuse layers (true or false, deployment-wide)'],
  ['layer_cache_max_age_seconds', 'integer', 'seconds a cached layer may be reused after it was recorded'],
  // 'level' reads 'default' as null: the deployment's cap.
  ['layer_cache_max_bytes', 'level', "the layer cache's size cap in bytes, or 'default'"],
];

const updateSettings = flagsSchema(SETTABLE, 'setting');

/** The PATCH body from the flags given. */
export function settingsPatchBody(flags: Record<string, unknown>): Record<string, unknown> {
  const values = parseOptions(updateSettings, flags);
  return Object.fromEntries(SETTABLE.flatMap(([name]) => (values[attributeOf(name)] === undefined ? [] : [[name, values[attributeOf(name)]]])));
}

const withFormat = (command: Command) =>
  command.addOption(new Option('--format <format>', 'output format: human, json (the API JSON, for jq) or yaml').choices(OUTPUT_FORMATS).default('human'));

/**
 * `cfs settings describe|update`: this product's own settings (`/apis/cfs-image/v1/settings`).
 * A command of its own rather than a flag of `cfs options`, so that `cfs options` stays the
 * mirror of `cray cfs options` and its flags and output are the CFS options alone; there is no
 * `--api-version` (the settings have one version).
 */
export function settingsCommand(io: CliIo = processIo): Command {
  const settings = new Command('settings').description("this product's own settings (not CFS options): image wait and poll, result compression, clone URL schemes, layer cache");

  withFormat(settings.command('describe').description('show every setting in force')).action(async (_options, command: Command) => {
    const { format } = outputOptions(command);
    const { body } = await new ApiClient(io).request('GET', PRODUCT_SETTINGS_PATH);
    await printResult(io, format, body, valuesSummary);
  });

  const update = settings.command('update').description('set one or more settings (the others keep their values)');
  for (const [name, , description] of SETTABLE) update.option(`${flagOf(name)} <value>`, description);
  withFormat(update).action(async (flags: Record<string, unknown>, command: Command) => {
    const { format } = outputOptions(command);
    const { body: answer } = await new ApiClient(io).request('PATCH', PRODUCT_SETTINGS_PATH, { body: settingsPatchBody(flags) });
    await printResult(io, format, answer, valuesSummary);
  });

  return settings;
}
