import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { handle, type LambdaContext, type LambdaEvent } from 'hono/aws-lambda';
import { awsRootWithSchedules } from '../adapters/aws/scheduler-root.ts';
import { createApp } from '../api/app.ts';
import { DASHBOARD_GATEWAY_RESOURCES, dashboardFilesApp, dashboardMirrorApp } from '../api/routes/dashboard.ts';
import type { AppPorts } from '../ports/index.ts';

/**
 * Where the API bundle's copy of the dashboard is (scripts/build.mjs puts it beside index.mjs), or,
 * running from the sources (functions/handlers/), the project's own `dashboard/`; undefined when neither exists.
 */
function shippedDashboardDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, 'dashboard'), join(here, '..', '..', 'dashboard')].find((dir) => existsSync(dir));
}

type Served = ReturnType<typeof handle>;

/** The API Gateway resource and method a REST (v1) proxy event came through, when it says. */
function gatewayRoute(event: LambdaEvent): { resource?: string; method?: string; browserPath?: string; query: URLSearchParams } {
  const e = event as {
    requestContext?: { resourcePath?: string; path?: string };
    httpMethod?: string;
    multiValueQueryStringParameters?: Record<string, string[] | undefined> | null;
  };
  const query = new URLSearchParams();
  for (const [name, values] of Object.entries(e.multiValueQueryStringParameters ?? {})) for (const value of values ?? []) query.append(name, value);
  return { resource: e.requestContext?.resourcePath, method: e.httpMethod, browserPath: e.requestContext?.path, query };
}

/**
 * The stage URL without its trailing slash (`.../v1`) also reaches the page, but the page's
 * relative links would then resolve outside the stage: send the browser to `.../v1/` first.
 */
function withTrailingSlash(browserPath: string | undefined, query: URLSearchParams): ReturnType<Served> | undefined {
  // Only a plain absolute path: `//host` would send the browser to another site.
  if (browserPath === undefined || browserPath.endsWith('/') || !/^\/[^/]/.test(browserPath)) return undefined;
  const search = query.size > 0 ? `?${query.toString()}` : '';
  const headers: Record<string, string> = { location: `${browserPath}/${search}`, 'cache-control': 'no-store' };
  return Promise.resolve({ statusCode: 301, headers, body: '', isBase64Encoded: false });
}

/**
 * The API Gateway (REST, proxy integration) entry point of an app built on `ports`. Requests the
 * gateway let through without a signature reach only what their resource is for, whatever path
 * their encoding resolves to: `GET /` and `GET /dashboard/{file}` only the dashboard's static
 * files, `/dashboard/apis/{proxy+}` (a dashboard token) only the read-only mirror. Everything else
 * was signed with IAM and reaches the whole app.
 */
export function apiHandler(ports: () => AppPorts, dashboardDir: string | undefined = shippedDashboardDir()) {
  let full: ReturnType<typeof createApp> | undefined;
  let serveFull: Served | undefined;
  let serveFiles: Served | undefined;
  let serveMirror: Served | undefined;
  // The same app as the embedded server, built once per instance on the AWS ports (only when a request needs it).
  const app = () => (full ??= createApp(ports(), { dashboardDir }));
  return (event: LambdaEvent, context?: LambdaContext) => {
    const { resource, method, browserPath, query } = gatewayRoute(event);
    if (resource === DASHBOARD_GATEWAY_RESOURCES.page && method === 'GET') {
      const redirect = withTrailingSlash(browserPath, query);
      if (redirect) return redirect;
    }
    if ((resource === DASHBOARD_GATEWAY_RESOURCES.page || resource === DASHBOARD_GATEWAY_RESOURCES.file) && method === 'GET') {
      serveFiles ??= handle(dashboardFilesApp(dashboardDir));
      return serveFiles(event, context);
    }
    if (resource === DASHBOARD_GATEWAY_RESOURCES.mirror) {
      serveMirror ??= handle(dashboardMirrorApp((request) => app().fetch(request)));
      return serveMirror(event, context);
    }
    serveFull ??= handle(app());
    return serveFull(event, context);
  };
}

export const handler = apiHandler(() => awsRootWithSchedules().appPorts());
