import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Hono, type Context } from 'hono';
import { packageRoot } from '../../adapters/local/package-root.ts';
import { problem } from '../problem.ts';

/** Where the dashboard's files are served from: `/` is the page, `/dashboard/<file>` its scripts and styles. */
export const DASHBOARD_ASSET_PREFIX = '/dashboard/';

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

/** The dashboard folder at the project root, found from the sources and from the bundle in dist/ alike; undefined where it is not shipped (a Lambda bundle). */
function defaultDashboardDir(): string | undefined {
  try {
    return join(packageRoot(), 'dashboard');
  } catch {
    return undefined;
  }
}

/**
 * The read-only web dashboard (sessions, their steps and logs, images and their lineage): static
 * files from the `dashboard/` folder, served by the same app as the API so the page calls the API
 * on its own origin. `/` answers the page; every other unknown path still gets the API's problem+json 404.
 */
export function dashboardRoutes(dir: string | undefined = defaultDashboardDir()): Hono {
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
  const readOnly = (name: (c: Context) => string) => (c: Context) =>
    c.req.method === 'GET' || c.req.method === 'HEAD' ? serve(c, name(c)) : (c.header('Allow', 'GET, HEAD'), problem(c, 405, `${c.req.method} is not allowed on the dashboard`));
  r.all('/', readOnly(() => 'index.html'));
  r.all(`${DASHBOARD_ASSET_PREFIX}:name`, readOnly((c) => c.req.param('name') ?? ''));
  return r;
}
