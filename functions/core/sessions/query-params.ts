import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { AGE_PATTERN } from './age.ts';
import { fieldError, parseOrThrow } from './validation.ts';

/**
 * The query parameters of the CFS list and bulk-delete routes, as the spec names them. These
 * schemas validate every request and are what the OpenAPI document describes the parameters
 * with, so the two cannot drift.
 */

const age = z
  .string()
  .max(10, 'must be at most 10 characters')
  .regex(AGE_PATTERN, 'must be a number followed by m, h, d or w (e.g. 1h, 2d, 3w)')
  .meta({ description: 'An age in minutes, hours, days or weeks (`30m`, `1h`, `2d`, `3w`); empty means no filter.', example: '24h' });

/** What parseTagsParam reads: comma-separated `key=value` pairs (a key of at least one character), blank pairs skipped. */
export const TAGS_PARAM_PATTERN = /^(?:[^,=][^,=]*=[^,]*|\s*)(?:,(?:[^,=][^,=]*=[^,]*|\s*))*$/;

export const SESSION_STATUS_PARAMS = ['pending', 'running', 'complete', ''] as const;
export const SESSION_SUCCEEDED_PARAMS = ['none', 'true', 'false', 'unknown', ''] as const;

/** The filters every session listing and bulk delete takes. */
export const sessionFilterParamsSchema = z.strictObject({
  status: z
    .enum(SESSION_STATUS_PARAMS, { error: `must be one of ${SESSION_STATUS_PARAMS.filter(Boolean).join(', ')} (or empty)` })
    .optional()
    .meta({ description: 'Only sessions with this status (case-insensitive); empty means any.' }),
  succeeded: z
    .enum(SESSION_SUCCEEDED_PARAMS, { error: `must be one of ${SESSION_SUCCEEDED_PARAMS.filter(Boolean).join(', ')} (or empty)` })
    .optional()
    .meta({ description: 'Only sessions with this outcome (case-insensitive, so `True` is `true`); empty means any.' }),
  name_contains: z.string().optional().meta({ description: 'Only sessions whose name contains this string.' }),
  min_age: age.optional().meta({ description: 'Only sessions older than this age (started before now minus the age).' }),
  max_age: age.optional().meta({ description: 'Only sessions younger than this age (started after now minus the age).' }),
  tags: z
    .string()
    .regex(TAGS_PARAM_PATTERN, 'takes key=value pairs separated by commas')
    .optional()
    .meta({ description: 'Only sessions that have every one of these tags: `key=value` pairs separated by commas.', example: 'automation=nightly,site=a' }),
});

/** v3 paging: `limit` (default: the `default_page_size` option) and `after_id` (a name). */
export const pagingParamsSchema = z.strictObject({
  limit: z.coerce
    .number({ error: 'must be an integer of at least 1' })
    .int('must be an integer of at least 1')
    .min(1, 'must be an integer of at least 1')
    .optional()
    .meta({ description: 'At most this many records (default: the default_page_size option).' }),
  after_id: z.string().optional().meta({ description: 'Only records whose name sorts after this one (the `after_id` of the previous page\'s `next`).' }),
});

/**
 * What the server adds to `next` when a filtered v3 listing stopped reading before it found
 * `limit` matches (list-sessions.ts). A client that sends `next` back as the query sends it
 * too: it is taken, and changes nothing.
 */
export const SEARCH_STOPPED_EARLY = 'search_stopped_early';
const searchStoppedEarlyParam = z
  .literal('true', { error: 'is only ever true (the server sets it in next)' })
  .optional()
  .meta({ description: 'Set by the server in `next` when the search stopped early; sent back with the rest of `next`, it changes nothing.' });

/** `in_use=true|false` (case-insensitive, as cray sends `True`): what a configuration in use is, see configuration-use.ts. */
const inUseParam = z
  .stringbool({ truthy: ['true'], falsy: ['false'], case: 'insensitive', error: 'must be true or false' })
  .optional()
  .meta({
    type: 'boolean',
    description: 'Only configurations in use (true) or not in use (false): named by a pending or running session or by an automation (this product has no CFS components).',
  });

/** `GET /v3/sessions`. */
export const v3SessionListParamsSchema = sessionFilterParamsSchema.extend({ ...pagingParamsSchema.shape, [SEARCH_STOPPED_EARLY]: searchStoppedEarlyParam });
/** `GET /v2/sessions`: no paging; `age` is v2's deprecated spelling of `min_age`. */
export const v2SessionListParamsSchema = sessionFilterParamsSchema.extend({
  age: age.optional().meta({ description: 'Deprecated: the same as min_age.', deprecated: true }),
});
/** `DELETE /v3/sessions`: the filters, no paging; `status` defaults to `complete`. */
export const v3SessionDeleteParamsSchema = sessionFilterParamsSchema.extend({
  status: sessionFilterParamsSchema.shape.status.meta({
    description: 'Only sessions with this status (case-insensitive); default complete; empty means any status.',
    default: 'complete',
  }),
});
/** `DELETE /v2/sessions`. */
export const v2SessionDeleteParamsSchema = v3SessionDeleteParamsSchema.extend({ age: v2SessionListParamsSchema.shape.age });
/** What queryBoolean (route-helpers.ts) reads: true or false, any case, spaces around allowed. */
export const QUERY_BOOLEAN_PATTERN = /^\s*(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])\s*$/;
/** `PUT /v2|v3/configurations/{id}` (parsed by queryBoolean, which keeps its own message). */
export const configurationPutParamsSchema = z.strictObject({
  drop_branches: z.string().regex(QUERY_BOOLEAN_PATTERN).optional().meta({ description: 'true (case-insensitive) stores only the resolved commits.' }),
});
/** `GET /v3/configurations`: paging and `in_use`. */
export const v3ConfigurationListParamsSchema = pagingParamsSchema.extend({ in_use: inUseParam, [SEARCH_STOPPED_EARLY]: searchStoppedEarlyParam });
/** `GET /v2/configurations`: `in_use` only. */
export const v2ConfigurationListParamsSchema = z.strictObject({ in_use: inUseParam });

export type SessionFilterParams = z.output<typeof sessionFilterParamsSchema>;
export type V3SessionListParams = z.output<typeof v3SessionListParamsSchema>;
export type PagingParams = z.output<typeof pagingParamsSchema>;

/** Values compared case-insensitively, as `cray` sends booleans (`True`). */
const CASE_INSENSITIVE = new Set(['status', 'succeeded']);

/**
 * Parses a route's query parameters (each name to every value given) with one of the schemas
 * above. A parameter the route does not take, or one given twice, is a ValidationError (400)
 * naming it: nothing is silently ignored.
 */
export function parseQueryParams<S extends z.ZodObject>(schema: S, query: Record<string, string[]>): z.output<S> {
  const allowed = Object.keys(schema.shape);
  const single: Record<string, string> = {};
  for (const [name, values] of Object.entries(query)) {
    if (!allowed.includes(name)) {
      const served = allowed.length ? `; this route takes ${allowed.join(', ')}` : '; this route takes none';
      throw fieldError(name, `query parameter is not supported here${served}`);
    }
    if (values.length !== 1) throw fieldError(name, 'query parameter is given more than once');
    single[name] = CASE_INSENSITIVE.has(name) ? values[0]!.toLowerCase() : values[0]!;
  }
  try {
    return parseOrThrow(schema, single);
  } catch (error) {
    if (error instanceof ValidationError && error.field) throw fieldError(error.field, `query parameter ${error.message.slice(error.field.length + 2)}`);
    throw error;
  }
}
