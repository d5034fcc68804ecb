import type { V3ConfigurationRequest } from './configuration-schemas.ts';
import { fieldError } from '../sessions/validation.ts';

/**
 * The rules CFS applies on PUT (section b of reference/cfs-behaviour.md), plus what this
 * product needs to run a layer: a clone URL or a CFS v3 source (exactly one), a commit or a branch
 * to resolve, and a playbook path that stays inside the repository.
 */

// Control, format (bidi overrides) and line-separator characters, and both slashes.
const NOT_IN_A_NAME = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}/\\]/u;

/**
 * Why `name` cannot name a configuration, or undefined. CFS v3 allows 1-60 characters; a name
 * is also a path segment, a table key and a word in logs, so none holds control or format
 * characters, line separators, '/' or '\\', or '..', and none is '.'.
 */
export function configurationNameProblem(name: string): string | undefined {
  if (name.length < 1 || name.length > 60) return 'a configuration name must be 1 to 60 characters';
  if (NOT_IN_A_NAME.test(name)) return "a configuration name must not contain control characters, line breaks, '/' or '\\'";
  if (name === '.' || name.includes('..')) return "a configuration name must not be '.' or contain '..'";
  return undefined;
}

/** A configuration name: it is a path segment and a key (see configurationNameProblem). */
export function checkConfigurationName(name: string): void {
  const problem = configurationNameProblem(name);
  if (problem) throw fieldError('name', problem);
}

function checkPlaybook(playbook: string, at: string): void {
  if (playbook.startsWith('/') || playbook.split('/').includes('..')) {
    throw fieldError(`${at}.playbook`, `'${playbook}' must be a path inside the repository (relative, no '..')`);
  }
}

function checkSourceAndRevision(layer: { clone_url?: string; source?: string; commit?: string; branch?: string }, at: string): void {
  if (layer.source !== undefined && layer.clone_url !== undefined) throw fieldError(at, 'give either a clone_url or a source, not both');
  if (layer.source === undefined && layer.clone_url === undefined) throw fieldError(`${at}.clone_url`, 'is required');
  if (layer.branch !== undefined && layer.commit !== undefined) {
    throw fieldError(at, 'give either a branch or a commit, not both');
  }
  if (layer.branch === undefined && layer.commit === undefined) {
    throw fieldError(at, 'give a branch (resolved to a commit now) or a commit');
  }
}

/**
 * Checks a parsed configuration document. Throws a ValidationError naming the field (for
 * layers, by index) on the first problem.
 */
export function checkConfigurationRequest(request: V3ConfigurationRequest): void {
  if (request.tenant_name) {
    throw fieldError('tenant_name', 'multi-tenancy is not supported by this service; leave tenant_name out');
  }
  const seen = new Map<string, number>();
  request.layers.forEach((layer, i) => {
    const at = `layers[${i}]`;
    checkSourceAndRevision(layer, at);
    checkPlaybook(layer.playbook, at);
    const key = `${layer.source === undefined ? layer.clone_url : `source ${layer.source}`}\u0000${layer.playbook}`;
    const first = seen.get(key);
    if (first !== undefined) {
      throw fieldError(at, `conflicts with layers[${first}]: both run playbook '${layer.playbook}' of ${layer.clone_url ?? `source '${layer.source}'`}`);
    }
    seen.set(key, i);
  });
  if (request.additional_inventory) checkSourceAndRevision(request.additional_inventory, 'additional_inventory');
}
