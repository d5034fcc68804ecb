import { GitError, InvalidStateError, NotFoundError, ValidationError } from '../errors.ts';
import type { ConfigurationLayer, ConfigurationRecord } from '../model/configuration.ts';
import type { AppPorts } from '../../ports/index.ts';
import { rfc3339 } from '../sessions/rfc3339.ts';
import { fieldError, parseOrThrow } from '../sessions/validation.ts';
import { hasCloneUrlPolicy } from './clone-url.ts';
import { configurationsInUse } from './configuration-use.ts';
import { normalizeConfigurationBody } from './configuration-conversion.ts';
import { withDefaultPlaybooks } from './default-playbook.ts';
import { checkConfigurationName, checkConfigurationRequest } from './configuration-rules.ts';
import { v3ConfigurationSchema, type V3ConfigurationRequest } from './configuration-schemas.ts';
import { maskCloneUrlCredentials } from '../workflow/redact.ts';
import type { GitAccess } from '../sources/source-record.ts';
import { sourceAccess } from '../sources/source-use-cases.ts';

/** What the configuration use cases touch (sources where the composition root serves them). */
export type ConfigurationPorts = Pick<AppPorts, 'configurations' | 'git' | 'clock'> & Partial<Pick<AppPorts, 'sources' | 'sourceSecrets'>>;

interface Revision {
  name?: string;
  clone_url: string;
  source?: string;
  commit?: string;
  branch?: string;
}

/**
 * A layer that names a source takes the source's current clone URL, and its login and CA bundle
 * for branch resolution. The source must exist (a 400 naming the layer's `source`).
 */
async function withSources<T extends Revision>(ports: ConfigurationPorts, items: Array<{ at: string; item: T }>): Promise<Array<{ at: string; item: T; access?: GitAccess }>> {
  return Promise.all(
    items.map(async ({ at, item }) => {
      if (item.source === undefined) return { at, item };
      if (!ports.sources || !ports.sourceSecrets) throw fieldError(`${at}.source`, 'CFS sources are not supported by this deployment; give the repository as clone_url');
      try {
        const { source, access } = await sourceAccess({ sources: ports.sources, sourceSecrets: ports.sourceSecrets }, item.source);
        return { at, item: { ...item, clone_url: source.clone_url }, access };
      } catch (error) {
        if (error instanceof NotFoundError || error instanceof ValidationError) throw fieldError(`${at}.source`, error.message);
        throw error;
      }
    }),
  );
}

/** Vets every clone URL, then resolves every branch to a commit (in parallel); a failure names the layer. */
async function resolveRevisions<T extends Revision>(ports: ConfigurationPorts, given: Array<{ at: string; item: T }>): Promise<T[]> {
  const git = ports.git;
  const items = await withSources(ports, given);
  for (const { at, item } of items) {
    if (!hasCloneUrlPolicy(git)) break;
    try {
      git.assertAllowedCloneUrl(item.clone_url);
    } catch (error) {
      if (error instanceof ValidationError) throw fieldError(`${at}.clone_url`, error.message);
      throw error;
    }
  }
  const settled = await Promise.allSettled(
    items.map(async ({ item, access }) => (item.branch === undefined ? item : { ...item, commit: await git.resolveBranch(item.clone_url, item.branch, access) })),
  );
  return settled.map((result, i) => {
    if (result.status === 'fulfilled') return result.value;
    const error = result.reason as Error;
    if (error instanceof GitError || error instanceof ValidationError || error?.name === 'GitError') {
      throw fieldError(items[i]!.at, error.message);
    }
    throw error;
  });
}

/**
 * Answers show clone URLs with their credentials masked; a client that PUTs such an answer
 * back (edit, then PUT) means the stored URL, so a clone URL equal to the masked form of one
 * the stored configuration has is replaced by that stored URL. Any other URL is taken as sent.
 */
function keepStoredCredentials(request: V3ConfigurationRequest, stored: ConfigurationRecord | undefined): V3ConfigurationRequest {
  if (!stored) return request;
  const real = new Map<string, string>();
  for (const { clone_url } of [...stored.layers, ...(stored.additional_inventory ? [stored.additional_inventory] : [])]) {
    const shown = maskCloneUrlCredentials(clone_url);
    if (shown !== clone_url) real.set(shown, clone_url);
  }
  const restore = <T extends { clone_url?: string }>(item: T): T =>
    item.clone_url !== undefined && real.has(item.clone_url) ? { ...item, clone_url: real.get(item.clone_url)! } : item;
  return {
    ...request,
    layers: request.layers.map(restore),
    ...(request.additional_inventory ? { additional_inventory: restore(request.additional_inventory) } : {}),
  };
}

function withoutBranch<T extends { branch?: string }>(item: T): T {
  const copy = { ...item };
  delete copy.branch;
  return copy;
}

/**
 * Creates or replaces a configuration (PUT). Accepts v2 or v3 field names, checks the CFS
 * rules, resolves every `branch` (layers and additional inventory) to a commit with git, and
 * keeps the branch unless `dropBranches`. Git failures are a 400 naming the layer. Through v2, a
 * layer without `playbook` runs `site.yml`, as in CFS (v3 requires it).
 */
export async function putConfiguration(
  ports: ConfigurationPorts,
  name: string,
  body: unknown,
  options: { dropBranches?: boolean; version?: 'v2' | 'v3' } = {},
): Promise<ConfigurationRecord> {
  checkConfigurationName(name);
  const normalized = withDefaultPlaybooks(normalizeConfigurationBody(body), options.version ?? 'v3');
  const request = keepStoredCredentials(parseOrThrow(v3ConfigurationSchema, normalized), await ports.configurations.get(name));
  checkConfigurationRequest(request);

  const layers: ConfigurationLayer[] = request.layers.map((l) => ({
    ...(l.name !== undefined ? { name: l.name } : {}),
    // A source's clone URL is filled in by resolveRevisions.
    clone_url: l.clone_url ?? '',
    ...(l.source !== undefined ? { source: l.source } : {}),
    playbook: l.playbook,
    // Filled in by resolveRevisions when only a branch was given (the rules demand one of the two).
    commit: l.commit ?? '',
    ...(l.branch !== undefined ? { branch: l.branch } : {}),
    ...(l.special_parameters ? { special_parameters: l.special_parameters } : {}),
  }));
  const inventory = request.additional_inventory;
  const items: Array<{ at: string; item: Revision }> = layers.map((item, i) => ({ at: `layers[${i}]`, item }));
  if (inventory) {
    items.push({
      at: 'additional_inventory',
      item: {
        ...(inventory.name !== undefined ? { name: inventory.name } : {}),
        clone_url: inventory.clone_url ?? '',
        ...(inventory.source !== undefined ? { source: inventory.source } : {}),
        ...(inventory.commit !== undefined ? { commit: inventory.commit } : {}),
        ...(inventory.branch !== undefined ? { branch: inventory.branch } : {}),
      },
    });
  }
  let resolved = await resolveRevisions(ports, items);
  if (options.dropBranches) resolved = resolved.map(withoutBranch);

  const record: ConfigurationRecord = {
    name,
    ...(request.description !== undefined ? { description: request.description } : {}),
    last_updated: rfc3339(ports.clock.now()),
    layers: resolved.slice(0, layers.length) as ConfigurationLayer[],
    ...(inventory ? { additional_inventory: resolved[layers.length] as ConfigurationRecord['additional_inventory'] } : {}),
  };
  await ports.configurations.put(record);
  return record;
}

/** One configuration; NotFoundError when missing. */
export async function getConfiguration(ports: Pick<AppPorts, 'configurations'>, name: string): Promise<ConfigurationRecord> {
  const record = await ports.configurations.get(name);
  if (!record) throw new NotFoundError('configuration', name);
  return record;
}

/** Every configuration, ordered by name. */
export function listConfigurations(ports: Pick<AppPorts, 'configurations'>): Promise<ConfigurationRecord[]> {
  return ports.configurations.list();
}

/**
 * PATCH: re-resolves every layer (and the additional inventory) that names a branch to the
 * branch's current commit, and bumps `last_updated`, as CFS does. NotFoundError when missing.
 */
export async function patchConfiguration(ports: ConfigurationPorts, name: string): Promise<ConfigurationRecord> {
  const current = await getConfiguration(ports, name);
  const items: Array<{ at: string; item: Revision }> = current.layers.map((item, i) => ({ at: `layers[${i}]`, item }));
  if (current.additional_inventory) items.push({ at: 'additional_inventory', item: current.additional_inventory });
  const resolved = await resolveRevisions(ports, items);
  const record: ConfigurationRecord = {
    ...current,
    last_updated: rfc3339(ports.clock.now()),
    layers: resolved.slice(0, current.layers.length) as ConfigurationLayer[],
    ...(current.additional_inventory ? { additional_inventory: resolved[current.layers.length] as ConfigurationRecord['additional_inventory'] } : {}),
  };
  await ports.configurations.put(record);
  return record;
}

/**
 * Deletes a configuration, refused (InvalidStateError, a 409) while it is in use: named by a
 * pending or running session or by an automation (configuration-use.ts; the same meaning as the
 * `in_use` listing filter). NotFoundError when missing.
 */
export async function deleteConfiguration(ports: Pick<AppPorts, 'configurations' | 'sessions' | 'automations'>, name: string): Promise<void> {
  await getConfiguration(ports, name);
  const users = (await configurationsInUse(ports)).get(name) ?? [];
  if (users.length > 0) {
    const steps = [users.some((u) => u.startsWith('session ')) ? 'wait for or delete the sessions' : '', users.some((u) => u.startsWith('automation ')) ? 'change or delete the automations' : ''];
    throw new InvalidStateError(`configuration '${name}' is used by ${users.join(', ')}; ${steps.filter(Boolean).join(' and ')} first`);
  }
  if (!(await ports.configurations.delete(name))) throw new NotFoundError('configuration', name);
}
