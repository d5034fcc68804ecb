import { ValidationError } from '../errors.ts';

/**
 * Maps whose keys a client chooses (image metadata, session tags). Built on a null prototype,
 * so every key, `__proto__` and `constructor` included, is stored and read back as data: an
 * assignment to `__proto__` on a plain object would change its prototype instead.
 */
export type StringMap = Record<string, string>;

/** A map of `entries`, every key kept as data. */
export function stringMap(entries: Iterable<readonly [string, string]> = []): StringMap {
  const map = Object.create(null) as StringMap;
  for (const [key, value] of entries) map[key] = value;
  return map;
}

/**
 * The map a client sent (already checked by a zod record, which leaves `__proto__` out of what
 * it returns), rebuilt from the client's own object so no key is lost. A value that is not a
 * string is a ValidationError naming `<field>.<key>`.
 */
export function ownStringMap(value: unknown, field: string): StringMap {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ValidationError(`${field} must be an object of strings`, field);
  const entries = Object.entries(value);
  for (const [key, item] of entries) {
    if (typeof item !== 'string') throw new ValidationError(`${field}.${key}: values must be strings`, `${field}.${key}`);
  }
  return stringMap(entries as Array<[string, string]>);
}
