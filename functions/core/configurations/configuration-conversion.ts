import { ValidationError } from '../errors.ts';
import type { ConfigurationLayer, ConfigurationRecord } from '../model/configuration.ts';
import { fieldError } from '../sessions/validation.ts';
import { maskCloneUrlCredentials } from '../workflow/redact.ts';

/**
 * CFS v2 <-> v3 configuration shapes. v3 is stored; v2 is a view. Both endpoints accept both
 * spellings because the `cray` CLI sends the user's file unconverted.
 */

/** camelCase (v2) spelling -> snake_case (v3) spelling, per object level. */
const TOP_LEVEL: Record<string, string> = { lastUpdated: 'last_updated' };
const LAYER_LEVEL: Record<string, string> = { cloneUrl: 'clone_url', specialParameters: 'special_parameters' };
const SPECIAL_LEVEL: Record<string, string> = { imsRequireDkms: 'ims_require_dkms' };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rename(value: unknown, names: Record<string, string>, at: string): unknown {
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const snake = names[key];
    if (snake !== undefined && snake in value) {
      throw fieldError(`${at}${key}`, `give either ${snake} or ${key}, not both`);
    }
    out[snake ?? key] = v;
  }
  return out;
}

/**
 * Rewrites a configuration body that may use v2 (camelCase) or v3 (snake_case) field names,
 * or a mix, into v3 spelling. Anything that is not an object is left for the schema to refuse.
 */
export function normalizeConfigurationBody(body: unknown): unknown {
  const top = rename(body, TOP_LEVEL, '');
  if (!isObject(top)) return top;
  const layer = (value: unknown, at: string) => {
    const renamed = rename(value, LAYER_LEVEL, at);
    if (isObject(renamed) && 'special_parameters' in renamed) {
      renamed.special_parameters = rename(renamed.special_parameters, SPECIAL_LEVEL, `${at}special_parameters.`);
    }
    return renamed;
  };
  const out = { ...top };
  if (Array.isArray(top.layers)) out.layers = top.layers.map((l, i) => layer(l, `layers[${i}].`));
  if ('additional_inventory' in top) out.additional_inventory = layer(top.additional_inventory, 'additional_inventory.');
  return out;
}

const V3_TO_V2_FIELD_NAMES: Record<string, string> = {
  last_updated: 'lastUpdated',
  clone_url: 'cloneUrl',
  special_parameters: 'specialParameters',
  ims_require_dkms: 'imsRequireDkms',
};

/** A ValidationError with its field spelled as v2 spells it (for v2 callers). */
export function configurationErrorToV2(error: ValidationError): ValidationError {
  if (!error.field) return error;
  const field = error.field.replace(/[a-z_]+/g, (part) => V3_TO_V2_FIELD_NAMES[part] ?? part);
  if (field === error.field) return error;
  const message = error.message.startsWith(`${error.field}:`) ? field + error.message.slice(error.field.length) : error.message;
  return new ValidationError(message, field);
}

/** A layer as answers show it: credentials in its clone URL masked (see maskCloneUrlCredentials). */
function masked<T extends { clone_url: string; source?: string }>(layer: T): Omit<T, 'clone_url'> & { clone_url?: string } {
  // A layer that names a source shows the source, as it was given: its clone URL is the source's.
  if (layer.source !== undefined) {
    const { clone_url: _sourceUrl, ...rest } = layer;
    return rest;
  }
  return { ...layer, clone_url: maskCloneUrlCredentials(layer.clone_url) };
}

/** V3ConfigurationData as answered: a layer shows its clone URL or the source it names, never both. */
export type V3ConfigurationView = Omit<ConfigurationRecord, 'layers' | 'additional_inventory'> & {
  layers: Array<ReturnType<typeof masked<ConfigurationRecord['layers'][number]>>>;
  additional_inventory?: ReturnType<typeof masked<NonNullable<ConfigurationRecord['additional_inventory']>>>;
};

/** The v3 response body (V3ConfigurationData): the stored record, clone URL credentials masked. */
export function configurationToV3(record: ConfigurationRecord): V3ConfigurationView {
  return {
    name: record.name,
    ...(record.description !== undefined ? { description: record.description } : {}),
    last_updated: record.last_updated,
    layers: record.layers.map(masked),
    ...(record.additional_inventory ? { additional_inventory: masked(record.additional_inventory) } : {}),
  };
}

/** The v2 response body (V2Configuration). */
export interface V2ConfigurationView {
  name: string;
  description?: string;
  lastUpdated: string;
  layers: Array<{
    name?: string;
    cloneUrl: string;
    playbook: string;
    commit: string;
    branch?: string;
    specialParameters?: { imsRequireDkms?: boolean };
  }>;
  additional_inventory?: { name?: string; cloneUrl: string; commit: string; branch?: string };
}

function layerToV2(layer: ConfigurationLayer): V2ConfigurationView['layers'][number] {
  return {
    ...(layer.name !== undefined ? { name: layer.name } : {}),
    cloneUrl: maskCloneUrlCredentials(layer.clone_url),
    playbook: layer.playbook,
    commit: layer.commit,
    ...(layer.branch !== undefined ? { branch: layer.branch } : {}),
    ...(layer.special_parameters
      ? {
          specialParameters:
            layer.special_parameters.ims_require_dkms === undefined ? {} : { imsRequireDkms: layer.special_parameters.ims_require_dkms },
        }
      : {}),
  };
}

/** The stored record as CFS v2 shows it, clone URL credentials masked. */
export function configurationToV2(record: ConfigurationRecord): V2ConfigurationView {
  const inventory = record.additional_inventory;
  return {
    name: record.name,
    ...(record.description !== undefined ? { description: record.description } : {}),
    lastUpdated: record.last_updated,
    layers: record.layers.map(layerToV2),
    ...(inventory
      ? {
          additional_inventory: {
            ...(inventory.name !== undefined ? { name: inventory.name } : {}),
            cloneUrl: maskCloneUrlCredentials(inventory.clone_url),
            commit: inventory.commit,
            ...(inventory.branch !== undefined ? { branch: inventory.branch } : {}),
          },
        }
      : {}),
  };
}
