import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Hono, type Context } from 'hono';
import { problem } from '../problem.ts';

/** Where the dashboard's files are served from: `/` is the page, `/dashboard/<file>` its scripts and styles. */
export const DASHBOARD_ASSET_PREFIX = '/dashboard/';

/**
 * The page's read-only view of the API: `GET /dashboard/apis/<rest>` answers as `GET /apis/<rest>`.
 * The page calls only this, relative to its own address, so it works at `/` (embedded) and under a
 * stage prefix such as `/v1/` (API Gateway), where this path has a token authorizer of its own.
 */
export const DASHBOARD_API_MIRROR_PREFIX = '/dashboard/apis/';

/**
 * The API Gateway resources of the dashboard (lib/constructs/cfs-api.ts makes them, the API
 * handler tells them apart): the static files need no authorization (GET only), the mirror a
 * dashboard token (GET and HEAD only); every other method of the API is signed with IAM.
 */
export const DASHBOARD_GATEWAY_RESOURCES = {
  page: '/',
  file: '/dashboard/{file}',
  mirror: '/dashboard/apis/{proxy+}',
} as const;

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

// Only flat, plainly named files: no path can climb out of the folder.
const ASSET_NAME = /^[a-z0-9-]+\.(html|js|css|svg)$/;

// Everything comes from this origin (the page calls the API beside it); nothing from the internet.
const CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** True for the paths of the dashboard's static files (the page, its scripts, styles and icon): they hold no data, so need no token. */
export function isDashboardFilePath(path: string): boolean {
  return path === '/' || (path.startsWith(DASHBOARD_ASSET_PREFIX) && ASSET_NAME.test(path.slice(DASHBOARD_ASSET_PREFIX.length)));
}

const isRead = (c: Context) => c.req.method === 'GET' || c.req.method === 'HEAD';
const notAllowed = (c: Context, what: string) => {
  c.header('Allow', 'GET, HEAD');
  return problem(c, 405, `${c.req.method} is not allowed on ${what}`);
};

/**
 * The read-only web dashboard (sessions, their steps and logs, images and their lineage): static
 * files from the `dashboard/` folder, served by the same app as the API so the page calls the API
 * on its own origin. `/` answers the page; every other unknown path still gets the API's problem+json 404.
 * `dir` comes from the composition root (the embedded server's project folder, the API bundle's
 * shipped copy); without one, every dashboard file is a 404.
 */
export function dashboardRoutes(dir: string | undefined): Hono {
  const r = new Hono();
  const cache = new Map<string, string>();

  async function serve(c: Context, name: string) {
    if (!ASSET_NAME.test(name)) return problem(c, 404, `no dashboard file '${name}'`);
    let body = cache.get(name);
    if (body === undefined) {
      if (dir === undefined) return problem(c, 404, 'the dashboard is not shipped with this server');
      try {
        body = await readFile(join(dir, name), 'utf8');
      } catch {
        return problem(c, 404, `no dashboard file '${name}'`);
      }
      cache.set(name, body);
    }
    const type = CONTENT_TYPES[name.slice(name.lastIndexOf('.') + 1)]!;
    return c.body(body, 200, { 'Content-Type': type, 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' });
  }

  // Registered for every method (answering 405 to all but GET and HEAD): the page is not an API
  // operation, so it stays out of the API's route list that the OpenAPI document is checked against.
  const readOnly = (name: (c: Context) => string) => (c: Context) => (isRead(c) ? serve(c, name(c)) : notAllowed(c, 'the dashboard'));
  r.all('/', readOnly(() => 'index.html'));
  r.all(`${DASHBOARD_ASSET_PREFIX}:name`, readOnly((c) => c.req.param('name') ?? ''));
  return r;
}

/**
 * The dashboard's read-only mirror of the API: a GET or HEAD of `/dashboard/apis/<rest>` is handed
 * to `forward` as the same request to `/apis/<rest>` (same headers, so the same authorization);
 * any other method is a 405, so the mirror cannot change anything even with a leaked token.
 * Registered for every method, like the page, to stay out of the API's documented route list.
 */
export function dashboardApiMirror(forward: (request: Request) => Response | Promise<Response>): Hono {
  const r = new Hono();
  r.all(`${DASHBOARD_API_MIRROR_PREFIX}*`, (c) => {
    if (!isRead(c)) return notAllowed(c, "the dashboard's read-only view of the API");
    // The URL is already normalized (no `..` segments), so the rest stays under /apis/.
    const url = new URL(c.req.url);
    url.pathname = `/apis/${url.pathname.slice(DASHBOARD_API_MIRROR_PREFIX.length)}`;
    return forward(new Request(url, c.req.raw));
  });
  return r;
}

/** An app of only `routes`, whose every other path is the API's problem+json 404. */
function onlyThese(routes: Hono): Hono {
  const app = new Hono();
  app.route('/', routes);
  app.notFound((c) => problem(c, 404, `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  return app;
}

/**
 * What API Gateway's unauthorized dashboard methods may reach in the API Lambda: the static files
 * and nothing else, whatever path a request's encoding resolves to.
 */
export function dashboardFilesApp(dir?: string): Hono {
  return onlyThese(dashboardRoutes(dir));
}

/** What the token-authorized mirror methods may reach: the read-only mirror, forwarding into the full app. */
export function dashboardMirrorApp(forward: (request: Request) => Response | Promise<Response>): Hono {
  return onlyThese(dashboardApiMirror(forward));
}
