import { z } from 'zod';
import { CliError } from './io.ts';

/**
 * Command options checked by zod schemas (shadcn's habit): each command declares what its flags
 * take, and the first problem becomes its one-line error (exit 1), worded as the flag's own.
 */
export function parseOptions<Schema extends z.ZodType>(schema: Schema, options: unknown): z.output<Schema> {
  const parsed = schema.safeParse(options);
  if (!parsed.success) throw new CliError(parsed.error.issues[0]!.message);
  return parsed.data;
}

/** A `[boolean]` flag: true when given bare, else `true` or `false` in any case. */
export function booleanFlag(flag: string) {
  return z.union([z.boolean(), z.string()]).transform((value, ctx) => {
    if (typeof value === 'boolean') return value;
    const text = value.trim().toLowerCase();
    if (text === 'true' || text === 'false') return text === 'true';
    ctx.issues.push({ code: 'custom', input: value, message: `${flag} takes true or false, not '${value}'` });
    return z.NEVER;
  });
}

/** A flag's text that must match `pattern`, or `message` names what it takes (e.g. "--layer takes a layer index (0, 1, ...)"). */
export function matchingFlag(pattern: RegExp, message: string) {
  return z.string().regex(pattern, { error: (issue) => `${message}, not '${String(issue.input)}'` });
}
