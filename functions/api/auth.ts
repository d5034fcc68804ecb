import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Hono, type MiddlewareHandler } from 'hono';
import { problem } from './problem.ts';
import { LOCAL_ENV } from '../server/environment.ts';
import { isDashboardFilePath } from './routes/dashboard.ts';

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

/** The path of the dashboard's one-time sign-in link (`/login?code=...`), embedded server only. */
export const DASHBOARD_LOGIN_PATH = '/login';

/** The cookie the sign-in link sets: HttpOnly, SameSite=Strict, read access only. */
export const DASHBOARD_COOKIE = 'cfs_dashboard';

/**
 * Health and version answers reveal nothing, so they need no credential (CFS's `/apis/cfs/`,
 * `/versions`, `/healthz`, `/v2`, `/v3`; IMS's `/healthz/ready`, `/healthz/live`, `/version`).
 */
const PUBLIC_READS = new Set([
  '/apis/cfs',
  '/apis/cfs/',
  '/apis/cfs/versions',
  '/apis/cfs/healthz',
  '/apis/cfs/v2',
  '/apis/cfs/v3',
  '/apis/ims/healthz/ready',
  '/apis/ims/healthz/live',
  '/apis/ims/version',
]);

const isRead = (method: string) => method === 'GET' || method === 'HEAD';

/** True for the health and version routes anyone may read. */
export function isPublicRead(method: string, path: string): boolean {
  return isRead(method) && PUBLIC_READS.has(path);
}

const base64url = (bytes: Buffer) => bytes.toString('base64url');

/**
 * The dashboard's way in, as Jupyter does it: the server prints a link carrying a one-time code;
 * opening it exchanges the code for an HttpOnly, SameSite=Strict cookie, so the token itself
 * never reaches the browser. The cookie is signed with a key derived from the API token (a new
 * token revokes every cookie) and carries its own expiry; it grants GET and HEAD only, so even
 * a request a browser sends with it from a same-site page cannot change anything.
 */
export class DashboardLogin {
  // Codes are kept by digest, so a lookup's timing says nothing about a code's characters.
  private readonly codes = new Map<string, number>();
  private readonly key: Buffer;
  private readonly now: () => number;
  private readonly maxAgeSeconds: number;

  constructor(
    token: string,
    private readonly options: { secure: boolean; now?: () => number; maxAgeSeconds?: number },
  ) {
    if (token.length === 0) throw new Error('a bearer token must not be empty');
    this.key = createHmac('sha256', token).update('cfs dashboard cookie v1').digest();
    this.now = options.now ?? Date.now;
    this.maxAgeSeconds = options.maxAgeSeconds ?? 7 * 24 * 3600;
  }

  /** A new one-time code, valid until used or for `ttlMs`. At most 32 are outstanding: the oldest goes first. */
  mintCode(ttlMs = Number.POSITIVE_INFINITY): string {
    const code = base64url(randomBytes(32));
    this.codes.set(digest(code).toString('hex'), this.now() + ttlMs);
    while (this.codes.size > 32) this.codes.delete(this.codes.keys().next().value!);
    return code;
  }

  /** Spends `code`: the Set-Cookie value when it was outstanding and unexpired, else undefined. */
  redeem(code: string | undefined): string | undefined {
    if (!code) return undefined;
    const id = digest(code).toString('hex');
    const expires = this.codes.get(id);
    this.codes.delete(id);
    if (expires === undefined || expires < this.now()) return undefined;
    const until = Math.floor(this.now() / 1000) + this.maxAgeSeconds;
    const payload = `${until}.${base64url(randomBytes(16))}`;
    const value = `${payload}.${this.mac(payload)}`;
    return `${DASHBOARD_COOKIE}=${value}; Path=/; Max-Age=${this.maxAgeSeconds}; HttpOnly; SameSite=Strict${this.options.secure ? '; Secure' : ''}`;
  }

  /** True when a `Cookie` header carries an unexpired cookie this server signed. */
  accepts(cookieHeader: string | undefined): boolean {
    for (const part of (cookieHeader ?? '').split(';')) {
      const [name, value] = part.trim().split('=', 2);
      if (name !== DASHBOARD_COOKIE || !value) continue;
      const match = /^(\d+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(value);
      if (!match) continue;
      const payload = `${match[1]}.${match[2]}`;
      if (Number(match[1]) * 1000 < this.now()) continue;
      if (timingSafeEqual(digest(match[3]!), digest(this.mac(payload)))) return true;
    }
    return false;
  }

  private mac(payload: string): string {
    return base64url(createHmac('sha256', this.key).update(payload).digest());
  }
}

/**
 * Requires `Authorization: Bearer <token>` (as the cray CLI sends it) on every request but signed
 * artifact URLs, the dashboard's static files (the page, its scripts and styles: no data, and a
 * browser must load them before it can ask for the token), the health and version routes, and the
 * sign-in link; with `login`, a GET or HEAD may show the dashboard's cookie instead. The token is
 * compared in constant time. Any miss is a problem+json 401.
 */
export function bearerTokenAuth(token: string, login?: DashboardLogin): MiddlewareHandler {
  if (token.length === 0) throw new Error(`${LOCAL_ENV.API_TOKEN} must not be empty`);
  const check = bearerTokenChecker(token);
  return async (c, next) => {
    const path = new URL(c.req.url).pathname;
    const method = c.req.method;
    if (path.startsWith(SELF_AUTHORIZED_PREFIX) || isDashboardFilePath(path) || isPublicRead(method, path)) return next();
    if (login && path === DASHBOARD_LOGIN_PATH) return next();
    const result = check(c.req.header('authorization'));
    if (result === 'valid') return next();
    if (result === 'missing' && login && isRead(method) && login.accepts(c.req.header('cookie'))) return next();
    c.header('WWW-Authenticate', 'Bearer realm="cfs"');
    return problem(c, 401, result === 'invalid' ? 'the bearer token is not valid' : 'an Authorization: Bearer token is required (`cfs auth token` prints it on the server\'s machine)', { title: 'Unauthorized', field: 'authorization' });
  };
}

/**
 * `GET /login?code=...`: spends a one-time code of `login` for the dashboard's cookie and sends
 * the browser on to the page (the code leaves the address bar and the history). A used, unknown
 * or expired code is a 401 saying how to get in instead.
 */
export function dashboardLoginRoutes(login: DashboardLogin): Hono {
  const r = new Hono();
  // Registered for every method, like the dashboard's page: not an API operation of the OpenAPI document.
  r.all(DASHBOARD_LOGIN_PATH, (c) => {
    if (!isRead(c.req.method)) {
      c.header('Allow', 'GET, HEAD');
      return problem(c, 405, `${c.req.method} is not allowed on the sign-in link`);
    }
    const cookie = login.redeem(c.req.query('code'));
    c.header('Cache-Control', 'no-store');
    c.header('Referrer-Policy', 'no-referrer');
    if (!cookie) {
      return problem(c, 401, 'this sign-in link was used already or is not valid; use the link `cfs server` printed last, or paste the output of `cfs auth token` into the dashboard', { title: 'Unauthorized', field: 'code' });
    }
    c.header('Set-Cookie', cookie);
    return c.redirect('/', 303);
  });
  return r;
}
