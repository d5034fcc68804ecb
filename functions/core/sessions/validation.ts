import type { z } from 'zod';
import { ValidationError } from '../errors.ts';

/**
 * Shared by the session and configuration rules: every refusal is a ValidationError whose
 * message starts with the offending field, so the problem+json `detail` (all that `cray`
 * shows) names it.
 */
export function fieldError(field: string, text: string): ValidationError {
  return new ValidationError(`${field}: ${text}`, field);
}

/** `['target', 'groups', 0, 'name']` -> `target.groups[0].name`. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

function describeType(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'an array';
  return `a ${typeof input}`;
}

/**
 * Parses `input` with a zod schema and turns the first problem into a ValidationError naming
 * the field. Unknown fields are reported first: the spec closes these objects, and a typo'd
 * field name is the likeliest mistake.
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> {
  const result = schema.safeParse(input, {
    error: (issue) => {
      if (issue.code !== 'invalid_type') return undefined;
      if (issue.input === undefined) return 'is required';
      return `must be ${issue.expected === 'array' ? 'an array' : issue.expected === 'object' ? 'an object' : `a ${issue.expected}`}, not ${describeType(issue.input)}`;
    },
  });
  if (result.success) return result.data;
  const issues = [...result.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
  const issue = issues[0]!;
  const base = prefix ? [prefix, ...issue.path] : [...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const field = fieldPath([...base, issue.keys[0]!]);
    const others = issue.keys.length > 1 ? ` (also: ${issue.keys.slice(1).join(', ')})` : '';
    return throwError(fieldError(field, `unknown field; this object accepts only the fields of the CFS spec${others}`));
  }
  return throwError(fieldError(fieldPath(base) || 'body', issue.message));
}

function throwError(error: Error): never {
  throw error;
}
