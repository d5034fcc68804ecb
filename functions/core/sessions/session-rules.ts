import { parsePassthrough } from './passthrough.ts';
import type { SessionCreateRequest } from './session-schemas.ts';
import { fieldError } from './validation.ts';

/**
 * The rules of a session create request that span fields (CFS's `_validate_session_target` and
 * more): this product serves image customization only, and it checks what CFS leaves to fail
 * later (image map sources in a group, unique valid result names, safe passthrough).
 */

/** Canonical UUID text (any case; stored lowercase, as IMS issues IDs). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An Ansible group name that needs no transformation (Ansible warns on and rewrites others). */
export const GROUP_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Groups Ansible or this product defines itself: `cfs_image` holds every image with its connection vars. */
export const RESERVED_GROUP_NAMES = ['all', 'ungrouped', 'cfs_image'] as const;
/** The only `ansible_config` value served: there are no ConfigMaps here. */
export const DEFAULT_ANSIBLE_CONFIG = 'cfs-default-ansible-cfg';

/** Why `name` is not a usable IMS image name, or undefined when it is. */
export function imageNameProblem(name: string): string | undefined {
  if (name.length < 1 || name.length > 255) return 'must be 1 to 255 characters';
  if (name.includes('/')) return "must not contain '/'";
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'must not contain control characters';
  if (name === '.' || name === '..') return "must not be '.' or '..'";
  return undefined;
}

function checkTarget(target: SessionCreateRequest['target']): SessionCreateRequest['target'] {
  if (target.definition !== 'image') {
    throw fieldError(
      'target.definition',
      `'${target.definition}' sessions are not served: this service runs image customization only (target.definition 'image')`,
    );
  }
  if (target.groups.length === 0) throw fieldError('target.groups', 'an image session needs at least one group of image IDs');
  const groupNames = new Set<string>();
  const allMembers = new Set<string>();
  const groups = target.groups.map((group, i) => {
    const at = `target.groups[${i}]`;
    if (!GROUP_NAME_PATTERN.test(group.name)) {
      throw fieldError(`${at}.name`, `'${group.name}' is not an Ansible group name (letters, digits and '_', not starting with a digit)`);
    }
    if ((RESERVED_GROUP_NAMES as readonly string[]).includes(group.name)) {
      throw fieldError(`${at}.name`, `'${group.name}' is reserved (${RESERVED_GROUP_NAMES.join(', ')} are defined by Ansible or this service)`);
    }
    if (groupNames.has(group.name)) throw fieldError(`${at}.name`, `group '${group.name}' is given twice`);
    groupNames.add(group.name);
    if (group.members.length === 0) throw fieldError(`${at}.members`, 'must list at least one image ID');
    const members = group.members.map((member, j) => {
      if (!UUID_PATTERN.test(member)) throw fieldError(`${at}.members[${j}]`, `'${member}' is not an image ID (a UUID)`);
      return member.toLowerCase();
    });
    for (const m of members) allMembers.add(m);
    return { name: group.name, members: [...new Set(members)] };
  });
  const sources = new Set<string>();
  const results = new Set<string>();
  const imageMap = target.image_map.map((entry, i) => {
    const at = `target.image_map[${i}]`;
    const sourceId = entry.source_id.toLowerCase();
    if (!UUID_PATTERN.test(entry.source_id)) throw fieldError(`${at}.source_id`, `'${entry.source_id}' is not an image ID (a UUID)`);
    if (!allMembers.has(sourceId)) throw fieldError(`${at}.source_id`, `image '${entry.source_id}' is not a member of any target group`);
    if (sources.has(sourceId)) throw fieldError(`${at}.source_id`, `image '${entry.source_id}' is mapped twice`);
    sources.add(sourceId);
    const problem = imageNameProblem(entry.result_name);
    if (problem) throw fieldError(`${at}.result_name`, problem);
    if (results.has(entry.result_name)) throw fieldError(`${at}.result_name`, `result name '${entry.result_name}' is used twice`);
    results.add(entry.result_name);
    return { source_id: sourceId, result_name: entry.result_name };
  });
  return { definition: 'image', groups, image_map: imageMap };
}

function checkTags(tags: Record<string, string>): void {
  for (const [key, value] of Object.entries(tags)) {
    // The list filter is `tags=k=v,k2=v2`: these characters would make a tag unqueryable.
    if (key === '' || /[=,]/.test(key)) throw fieldError(`tags.${key}`, "tag names must be non-empty and contain no '=' or ','");
    if (value.includes(',')) throw fieldError(`tags.${key}`, "tag values must not contain ','");
  }
}

/**
 * Checks a parsed v3 create request and returns it normalized (image IDs lowercase, the
 * default Ansible config named). Throws a ValidationError naming the field otherwise.
 */
export function validateSessionRequest(request: SessionCreateRequest): SessionCreateRequest {
  const target = checkTarget(request.target);
  if (request.ansible_config !== '' && request.ansible_config !== DEFAULT_ANSIBLE_CONFIG) {
    throw fieldError('ansible_config', `only '${DEFAULT_ANSIBLE_CONFIG}' is served: this service has no named Ansible configurations`);
  }
  parsePassthrough(request.ansible_passthrough);
  checkTags(request.tags);
  return { ...request, target, ansible_config: DEFAULT_ANSIBLE_CONFIG };
}
