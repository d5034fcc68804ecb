import type { Context, MiddlewareHandler } from 'hono';
import { problem } from './problem.ts';

/** The types a state-changing API request may carry its body in (the CLI and cray send application/json). */
const API_BODY_TYPES = new Set(['application/json', 'application/merge-patch+json']);

/** What the CLI and runner PUT to a signed artifact URL: raw bytes, or one of IMS's artifact types. */
const ARTIFACT_BODY_TYPE = /^(application\/octet-stream|application\/vnd\.cray\.image\.[a-z0-9.+-]+)$/;

const ARTIFACT_PREFIX = '/artifacts/';

const isRead = (method: string) => method === 'GET' || method === 'HEAD' || method === 'OPTIONS';

/** The `host[:port]` a URL or Host header names, as the URL parser normalizes it (lowercase, default port dropped, IPv6 in brackets); undefined when it is not a host. */
function normalHost(scheme: string, host: string): string | undefined {
  try {
    const url = new URL(`${scheme}://${host}`);
    return url.username || url.password || url.pathname !== '/' ? undefined : url.host;
  } catch {
    return undefined;
  }
}

/** What the server answers to: its own origins, `scheme://host[:port]` (loopback names with its port, the public URL). */
export interface OriginGuardOptions {
  origins: string[];
}

function hasBody(c: Context): boolean {
  const length = c.req.header('content-length');
  return c.req.header('transfer-encoding') !== undefined || (length !== undefined && length.trim() !== '0');
}

/**
 * Keeps other web origins from acting through a browser (the embedded server; API Gateway has its
 * own domain): a request must name one of the server's own hosts (a DNS-rebinding name gets a
 * 421); a request a browser marks as cross-site (`Sec-Fetch-Site`), a same-site one that changes
 * state, or one whose `Origin` is not the server's own, is a 403; and a body of a state-changing
 * request must be of a type a cross-origin form or `text/plain` POST cannot send (415). Requests
 * with no body need no type (cray sends DELETE and PATCH so).
 */
export function originGuard(options: OriginGuardOptions): MiddlewareHandler {
  const origins = new Set(options.origins.map((o) => new URL(o).origin));
  // Each origin's host as clients write it: with and without its scheme's default port.
  const hosts = new Set<string>();
  for (const origin of origins) {
    const url = new URL(origin);
    hosts.add(url.host);
    hosts.add(`${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`);
  }
  return async (c, next) => {
    const host = normalHost('http', c.req.header('host') ?? '');
    if (host === undefined || !hosts.has(host)) {
      return problem(c, 421, `this server does not answer for the host '${c.req.header('host') ?? ''}'; use ${[...origins][0]}`, { title: 'Misdirected Request', field: 'host' });
    }
    const method = c.req.method;
    const site = c.req.header('sec-fetch-site');
    if (site === 'cross-site' || (site === 'same-site' && !isRead(method))) {
      return problem(c, 403, `a ${site} request from a web page is refused`, { title: 'Forbidden', field: 'sec-fetch-site' });
    }
    const origin = c.req.header('origin');
    if (origin !== undefined && !origins.has(origin)) {
      return problem(c, 403, `requests from the web origin '${origin}' are refused`, { title: 'Forbidden', field: 'origin' });
    }
    if (!isRead(method)) {
      const type = c.req.header('content-type')?.split(';')[0]!.trim().toLowerCase();
      const artifact = new URL(c.req.url).pathname.startsWith(ARTIFACT_PREFIX);
      const allowed = artifact ? type === undefined || ARTIFACT_BODY_TYPE.test(type) : type === undefined ? !hasBody(c) : API_BODY_TYPES.has(type);
      if (!allowed) {
        const wanted = artifact ? 'application/octet-stream (or an application/vnd.cray.image.* type)' : 'application/json';
        return problem(c, 415, `a ${method} body must be ${wanted}, not ${type ?? 'untyped'}`, { field: 'content-type' });
      }
    }
    return next();
  };
}
