import type { z } from 'zod';
import { ValidationError } from '../errors.ts';

/**
 * Parses input with a zod schema; the first issue becomes a ValidationError naming the field
 * (JSON-path style, e.g. `metadata[0].value`), which the API turns into a 400 problem.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = [prefix, ...(issue?.path ?? []).map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))]
    .join('')
    .replace(/^\./, '');
  const message = issue?.code === 'invalid_type' && (issue as { input?: unknown }).input === undefined && path ? `${path} is required` : (issue?.message ?? 'invalid input');
  throw new ValidationError(message, path || undefined);
}
