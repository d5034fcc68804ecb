import type { Context, Hono } from 'hono';
import { InvalidStateError } from '../core/errors.ts';
import { HttpProblem } from './http-problem.ts';

/**
 * Small HTTP helpers shared by the route modules: 405 with `Allow`, strict query parameters,
 * and booleans parsed as `cray` sends them (`True`).
 */

/** Answers every method not served on `path` with 405 and an `Allow` header. Register after the real routes. */
export function allowOnly(router: Hono, path: string, methods: string[]): void {
  const allow = [...methods, ...(methods.includes('GET') ? ['HEAD'] : [])].join(', ');
  router.all(path, (c) => {
    throw new HttpProblem(405, `${c.req.method} is not allowed on ${new URL(c.req.url).pathname}; allowed: ${allow}`, undefined, { Allow: allow });
  });
}

/** Refuses query parameters the route does not serve, so none is silently ignored. */
export function assertQueryParams(c: Context, allowed: string[]): void {
  for (const name of Object.keys(c.req.queries())) {
    if (!allowed.includes(name)) {
      const served = allowed.length ? `; this route takes ${allowed.join(', ')}` : '; this route takes none';
      throw new HttpProblem(400, `${name}: query parameter is not supported here${served}`, name);
    }
  }
}

/** A boolean query parameter, case-insensitive (`true`, `True`, `false`, ...); `fallback` when absent. */
export function queryBoolean(c: Context, name: string, fallback: boolean): boolean {
  const raw = c.req.query(name);
  if (raw === undefined) return fallback;
  const value = raw.trim().toLowerCase();
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new HttpProblem(400, `${name}: must be true or false, not '${raw}'`, name);
}

/**
 * Runs work whose InvalidStateError (this app's 409) the upstream spec answers with 400 on this
 * operation, as CFS does (deleting a configuration in use); every other error passes unchanged.
 */
export async function invalidStateAsBadRequest<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof InvalidStateError) throw new HttpProblem(400, error.message);
    throw error;
  }
}

/** A JSON response with the exact status. */
export function json(c: Context, status: 200 | 201, body: unknown): Response {
  return c.json(body as object, status);
}
