import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { problem } from './problem.ts';

/** The environment variable holding the embedded server's API token (server side and CLI side). */
export const API_TOKEN_ENV = 'CFS_API_TOKEN';

/** Paths that carry their own authorization (HMAC-signed artifact URLs), so need no bearer token. */
const SELF_AUTHORIZED_PREFIX = '/artifacts/';

/** Hosts a server may bind to without a token: only this machine can reach them. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

// Digests have one length whatever was sent, so timingSafeEqual never throws and the
// comparison time does not depend on how much of the token matched.
const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * Requires `Authorization: Bearer <token>` (as the cray CLI sends it) on every request but signed
 * artifact URLs; the token is compared in constant time. Any miss is a problem+json 401.
 */
export function bearerTokenAuth(token: string): MiddlewareHandler {
  if (token.length === 0) throw new Error(`${API_TOKEN_ENV} must not be empty`);
  const expected = digest(token);
  return async (c, next) => {
    if (new URL(c.req.url).pathname.startsWith(SELF_AUTHORIZED_PREFIX)) return next();
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1]!.trim()), expected)) {
      c.header('WWW-Authenticate', 'Bearer realm="cfs"');
      return problem(c, 401, match ? 'the bearer token is not valid' : 'an Authorization: Bearer token is required', { title: 'Unauthorized', field: 'authorization' });
    }
    return next();
  };
}
