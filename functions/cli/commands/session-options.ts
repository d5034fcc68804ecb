import { Command, Option } from 'commander';
import { z } from 'zod';
import { ValidationError } from '../../core/errors.ts';
import { DEFAULT_KERNEL_PARAMETERS, VALIDATION_LIMITS, validationFromCliOptions } from '../../core/sessions/validation-spec.ts';
import { CliError } from '../io.ts';
import { parseOptions } from '../option-schemas.ts';
import { parseBoolean, parseKeyValueList } from '../output.ts';

// The options `cfs sessions create` and `cfs sessions plan` share, and the v3 body they make:
// a module of their own so that neither command imports the other.

/** Options of `cfs sessions create` that take two values each (as cray's click `nargs=2`). */
const PAIR_OPTIONS = {
  targetGroup: ['--target-group'],
  imageMap: ['--image-map', '--target-image-map'],
} as const;

/**
 * The values of every occurrence of a two-value option, read from the raw argv. Commander has
 * no two-value options; the option is declared variadic (so it consumes its values) and the
 * occurrences are read here so that each one is checked to have exactly two.
 */
function pairs(command: Command, flags: readonly string[], usage: string): Array<[string, string]> {
  let root = command;
  while (root.parent) root = root.parent;
  const raw = (root as unknown as { rawArgs: string[] }).rawArgs ?? [];
  const out: Array<[string, string]> = [];
  for (let i = 0; i < raw.length; i++) {
    const arg = raw[i]!;
    if (arg === '--') break;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (!flags.includes(flag)) continue;
    const values = flag === arg ? [] : [arg.slice(eq + 1)];
    let j = i + 1;
    while (j < raw.length && !raw[j]!.startsWith('-')) values.push(raw[j++]!);
    if (values.length !== 2) throw new CliError(`${flag} takes exactly two values: ${usage} (got ${values.length})`);
    out.push([values[0]!, values[1]!]);
    i = j - 1;
  }
  return out;
}

const createOptions = z.object({
  name: z.string(),
  configurationName: z.string(),
  configurationLimit: z.string().optional(),
  ansibleLimit: z.string().optional(),
  ansibleConfig: z.string().optional(),
  ansibleVerbosity: z.coerce.number({ error: '--ansible-verbosity takes an integer from 0 to 4' }).int('--ansible-verbosity takes an integer from 0 to 4').optional(),
  ansiblePassthrough: z.string().optional(),
  targetDefinition: z.string(),
  tags: z.array(z.string()).optional(),
  debugOnFailure: z.union([z.boolean(), z.string()]).optional(),
  check: z.array(z.string()).optional(),
  bootCheck: z.string().optional(),
  bootParameters: z.string().optional(),
  bootTimeout: z.string().optional(),
  /** Commander's `--no-cache`: false when given. */
  cache: z.boolean().optional(),
});

/** The `validation` body of the check and boot options (undefined when none was given); a bad one is a one-line error naming the option. */
function validationBody(o: z.output<typeof createOptions>): ReturnType<typeof validationFromCliOptions> {
  try {
    return validationFromCliOptions(o);
  } catch (error) {
    if (error instanceof ValidationError) throw new CliError(error.message);
    throw error;
  }
}

/** The v3 create body from the options, with only the fields given (as cray builds it). */
export function createBody(command: Command): Record<string, unknown> {
  const o = parseOptions(createOptions, command.opts());
  const body: Record<string, unknown> = { name: o.name, configuration_name: o.configurationName };
  if (o.configurationLimit !== undefined) body.configuration_limit = o.configurationLimit;
  if (o.ansibleLimit !== undefined) body.ansible_limit = o.ansibleLimit;
  if (o.ansibleConfig !== undefined) body.ansible_config = o.ansibleConfig;
  if (o.ansibleVerbosity !== undefined) body.ansible_verbosity = o.ansibleVerbosity;
  if (o.ansiblePassthrough !== undefined) body.ansible_passthrough = o.ansiblePassthrough;
  body.target = {
    definition: o.targetDefinition,
    groups: pairs(command, PAIR_OPTIONS.targetGroup, 'NAME ID[,ID...]').map(([name, members]) => ({ name, members: members.split(',') })),
    image_map: pairs(command, PAIR_OPTIONS.imageMap, 'SOURCE_ID RESULT_NAME').map(([source_id, result_name]) => ({ source_id, result_name })),
  };
  if (o.tags) body.tags = Object.assign({}, ...o.tags.map((t) => parseKeyValueList(t, '--tags')));
  if (o.debugOnFailure !== undefined) {
    body.debug_on_failure = typeof o.debugOnFailure === 'boolean' ? o.debugOnFailure : parseBoolean(o.debugOnFailure, '--debug-on-failure');
  }
  const validation = validationBody(o);
  if (validation) body.validation = validation;
  if (o.cache === false) body.layer_cache = false;
  return body;
}

/** The options of a session as `cray cfs sessions create` takes them (create and plan share them; createBody reads them). */
export function withSessionOptions(command: Command): Command {
  return command
    .requiredOption('--name <name>', 'session name (1-45 characters, lowercase Kubernetes name)')
    .requiredOption('--configuration-name <name>', 'the configuration whose layers to run')
    .option('--configuration-limit <layers>', 'comma list of layer names or 0-based indices to run')
    .option('--ansible-limit <pattern>', 'ansible-playbook --limit (default: every image)')
    .option('--ansible-config <name>', "Ansible configuration (only 'cfs-default-ansible-cfg' is served)")
    .option('--ansible-verbosity <n>', 'ansible-playbook verbosity, 0 to 4')
    .option('--ansible-passthrough <args>', 'extra ansible-playbook arguments (-e, -f, --skip-tags, --start-at-task, -t)')
    .option('--target-definition <definition>', "target definition (only 'image' is served)", 'image')
    .option('--target-group <name-and-ids...>', 'NAME ID[,ID...]: a group of image IDs (repeatable)')
    .option('--image-map <source-and-name...>', 'SOURCE_ID RESULT_NAME: name the image made from SOURCE_ID (repeatable)')
    .addOption(new Option('--target-image-map <source-and-name...>', 'the same as --image-map (the cray CLI spelling)'))
    .option('--tags <pairs...>', 'key=value[,key=value...] tags')
    .option('--debug-on-failure [boolean]', 'keep the workspace for inspection after a failed layer')
    .option('--no-cache', 'run every layer: reuse nothing from the layer cache (the layers are still recorded)')
    .option(
      '--check <name=command>',
      'NAME=COMMAND: run COMMAND with /bin/sh in each customized root after the last layer, before packing; a non-zero exit fails the image and nothing is registered (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      '--boot-check <regex>',
      "boot each packed result in a VM and pass when a console line matches REGEX; choose a line the image prints once it is up ('Reached target' alone also prints from an initramfs)",
    )
    .option('--boot-parameters <string>', `the boot test's kernel command line (default: ${DEFAULT_KERNEL_PARAMETERS}); needs --boot-check`)
    .option(
      '--boot-timeout <seconds>',
      `seconds the boot test waits for the pattern (${VALIDATION_LIMITS.timeoutSeconds.min} to ${VALIDATION_LIMITS.timeoutSeconds.max}, default ${VALIDATION_LIMITS.timeoutSeconds.default}); needs --boot-check`,
    );
}
