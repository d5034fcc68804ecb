import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { problem } from './problem.ts';
import { isDashboardFilePath } from './routes/dashboard.ts';

/** The environment variable holding the embedded server's API token (server side and CLI side). */
export const API_TOKEN_ENV = 'CFS_API_TOKEN';

/**
 * The environment variable of the AWS dashboard authorizer: the ARN of the Secrets Manager secret
 * holding the dashboard token (lib/ sets it and grants the read together).
 */
export const DASHBOARD_TOKEN_SECRET_ARN_ENV = 'CFS_DASHBOARD_TOKEN_SECRET_ARN';

/** Paths that carry their own authorization (HMAC-signed artifact URLs), so need no bearer token. */
const SELF_AUTHORIZED_PREFIX = '/artifacts/';

/** Hosts a server may bind to without a token: only this machine can reach them. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

// Digests have one length whatever was sent, so timingSafeEqual never throws and the
// comparison time does not depend on how much of the token matched.
const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** What an `Authorization` header says about a bearer token: none given, a wrong one, or the right one. */
export type BearerCheck = 'missing' | 'invalid' | 'valid';

/**
 * Checks an `Authorization: Bearer <token>` header against `token` in constant time. Shared by
 * the embedded server's middleware and the AWS dashboard authorizer, so both accept exactly the
 * same headers (any other scheme is `missing`).
 */
export function bearerTokenChecker(token: string): (header: string | undefined) => BearerCheck {
  if (token.length === 0) throw new Error('a bearer token must not be empty');
  const expected = digest(token);
  return (header) => {
    const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
    if (!match) return 'missing';
    return timingSafeEqual(digest(match[1]!.trim()), expected) ? 'valid' : 'invalid';
  };
}

/**
 * Requires `Authorization: Bearer <token>` (as the cray CLI sends it) on every request but signed
 * artifact URLs and the dashboard's static files (the page, its scripts and styles: no data, and a
 * browser must load them before it can ask for the token); the token is compared in constant time.
 * Any miss is a problem+json 401.
 */
export function bearerTokenAuth(token: string): MiddlewareHandler {
  if (token.length === 0) throw new Error(`${API_TOKEN_ENV} must not be empty`);
  const check = bearerTokenChecker(token);
  return async (c, next) => {
    const path = new URL(c.req.url).pathname;
    if (path.startsWith(SELF_AUTHORIZED_PREFIX) || isDashboardFilePath(path)) return next();
    const result = check(c.req.header('authorization'));
    if (result !== 'valid') {
      c.header('WWW-Authenticate', 'Bearer realm="cfs"');
      return problem(c, 401, result === 'invalid' ? 'the bearer token is not valid' : 'an Authorization: Bearer token is required', { title: 'Unauthorized', field: 'authorization' });
    }
    return next();
  };
}
