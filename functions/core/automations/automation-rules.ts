import type { ConfigurationRecord } from '../model/configuration.ts';
import { pinLayers } from '../sessions/configuration-limit.ts';
import { GROUP_NAME_PATTERN, RESERVED_GROUP_NAMES, validateSessionRequest } from '../sessions/session-rules.ts';
import { v3SessionCreateSchema } from '../sessions/session-schemas.ts';
import { fieldError, parseOrThrow } from '../sessions/validation.ts';
import type { AutomationSpec } from './automation-record.ts';
import { automationNameSchema, automationSpecSchema } from './automation-schemas.ts';
import { globProblem } from './glob.ts';
import { checkResultNameTemplate } from './result-name.ts';
import { toCronerSchedule } from './schedule-expression.ts';

/** A nil UUID standing in for the source image when the session rules check an automation's options. */
const SAMPLE_IMAGE_ID = '00000000-0000-0000-0000-000000000000';

/** Throws a ValidationError unless `name` is a usable automation name. */
export function checkAutomationName(name: string): void {
  if (!automationNameSchema.safeParse(name).success) {
    throw fieldError('name', `'${name}' is not an automation name: 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit`);
  }
}

function checkGroups(groups: string[]): void {
  const seen = new Set<string>();
  groups.forEach((group, i) => {
    const at = `groups[${i}]`;
    if (!GROUP_NAME_PATTERN.test(group)) throw fieldError(at, `'${group}' is not an Ansible group name (letters, digits and '_', not starting with a digit)`);
    if ((RESERVED_GROUP_NAMES as readonly string[]).includes(group)) {
      throw fieldError(at, `'${group}' is reserved (${RESERVED_GROUP_NAMES.join(', ')} are defined by Ansible or this service)`);
    }
    if (seen.has(group)) throw fieldError(at, `group '${group}' is given twice`);
    seen.add(group);
  });
}

/** The session create request an automation makes for one source image (also how its options are checked). */
export function sessionRequestFor(
  spec: AutomationSpec,
  name: string,
  sourceId: string,
  resultName: string,
  tags: Record<string, string>,
): Record<string, unknown> {
  return {
    name,
    configuration_name: spec.configuration_name,
    configuration_limit: spec.configuration_limit,
    ansible_limit: spec.ansible_limit,
    ansible_config: spec.ansible_config,
    ansible_verbosity: spec.ansible_verbosity,
    ansible_passthrough: spec.ansible_passthrough,
    debug_on_failure: spec.debug_on_failure,
    ...(spec.validation ? { validation: spec.validation } : {}),
    ...(spec.layer_cache !== undefined ? { layer_cache: spec.layer_cache } : {}),
    target: {
      definition: 'image',
      groups: spec.groups.map((group) => ({ name: group, members: [sourceId] })),
      image_map: [{ source_id: sourceId, result_name: resultName }],
    },
    tags,
  };
}

/** Why a configuration cannot be run by an image session, or undefined when it can. */
export function configurationProblem(configuration: ConfigurationRecord): string | undefined {
  // The same refusals as createSession's, so an automation is refused when it is stored, not at its first run.
  if (configuration.additional_inventory) {
    return `configuration '${configuration.name}' has additional_inventory, which image sessions here do not use; the target groups are the whole inventory`;
  }
  if (configuration.layers.length === 0) return `configuration '${configuration.name}' has no layers to run`;
  return undefined;
}

/**
 * Parses and checks an automation body: the schema, then the rules that give clear errors up
 * front (pattern, expression and time zone, placeholders, groups, the session options as a
 * session would check them, and the configuration: it must exist and its limit must fit).
 */
export function checkAutomation(name: string, body: unknown, configuration: ConfigurationRecord | undefined): AutomationSpec {
  checkAutomationName(name);
  const spec = parseOrThrow(automationSpecSchema, body) as AutomationSpec;
  const patternProblem = globProblem(spec.source.name_pattern);
  if (patternProblem) throw fieldError('source.name_pattern', `not a glob pattern: ${patternProblem}`);
  if (spec.source.name_pattern.includes('/')) throw fieldError('source.name_pattern', "image names never contain '/', so this pattern would match nothing");
  checkGroups(spec.groups);
  checkResultNameTemplate(spec.result_name_template, name);
  if (spec.schedule) toCronerSchedule(spec.schedule.expression, spec.schedule.timezone);
  const request = parseOrThrow(v3SessionCreateSchema, sessionRequestFor(spec, 'automation-check', SAMPLE_IMAGE_ID, 'result', {}));
  const checked = validateSessionRequest(request);
  if (!configuration) throw fieldError('configuration_name', `configuration '${spec.configuration_name}' does not exist`);
  const problem = configurationProblem(configuration);
  if (problem) throw fieldError('configuration_name', problem);
  pinLayers(configuration, spec.configuration_limit);
  return { ...spec, ansible_config: checked.ansible_config };
}
