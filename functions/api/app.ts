import { Hono } from 'hono';
import type { AppPorts } from '../ports/index.ts';
import { bearerTokenAuth, dashboardLoginRoutes, type DashboardLogin } from './auth.ts';
import { HttpProblem } from './http-problem.ts';
import { OPENAPI_PATH, openApiDocument } from './openapi.ts';
import { originGuard } from './origin-guard.ts';
import { problem, statusForError } from './problem.ts';
import { allowOnly } from './route-helpers.ts';
import { cfsAutomationRoutes } from './routes/cfs-automations.ts';
import { cfsConfigurationRoutes } from './routes/cfs-configurations.ts';
import { cfsOptionsRoutes } from './routes/cfs-options.ts';
import { cfsSessionOperationRoutes } from './routes/cfs-session-operations.ts';
import { cfsSessionChangesRoutes } from './routes/cfs-session-changes.ts';
import { cfsSessionRoutes } from './routes/cfs-sessions.ts';
import { cfsSourceRoutes } from './routes/cfs-sources.ts';
import { dashboardApiMirror, dashboardRoutes } from './routes/dashboard.ts';
import { artifactRoutes } from './routes/artifacts.ts';
import { imsImageRoutes } from './routes/ims-images.ts';
import { cfsServiceRoutes } from './routes/cfs-service.ts';
import { imsServiceRoutes } from './routes/ims-service.ts';
import { productSettingsRoutes } from './routes/product-settings.ts';

/** Longest path segment (URL-encoded) the API looks up: far above any name or id, below DynamoDB's 2048-byte key limit. */
export const MAX_PATH_SEGMENT = 1024;

/** How the app is served: the embedded server requires a bearer token and checks origins (AWS uses IAM at the gateway instead). */
export interface AppOptions {
  apiToken?: string;
  /** The longest an artifact upload URL lasts (default 15 minutes: DEFAULT_UPLOAD_URL_SECONDS). */
  uploadUrlSeconds?: number;
  /** The dashboard's one-time sign-in link and cookie (embedded server; needs `apiToken`). */
  login?: DashboardLogin;
  /** The server's own origins: other `Host` names, other web origins and form-like bodies are refused (embedded server). */
  origins?: string[];
  /** Where the dashboard's files are, given by the composition root (the project's `dashboard/` locally; a Lambda bundle ships its own copy); none: no dashboard files. */
  dashboardDir?: string;
}

/**
 * The HTTP API: one web-standard app served by Node on 127.0.0.1 (embedded) and by the API
 * Lambda behind API Gateway (AWS). Every error leaves as problem+json.
 */
export function createApp(ports: AppPorts, options: AppOptions = {}): Hono {
  const app = new Hono();
  // Before the token: a page on another origin or a rebinding name is refused whether or not a credential rides along.
  if (options.origins !== undefined) app.use('*', originGuard({ origins: options.origins }));
  if (options.apiToken !== undefined) app.use('*', bearerTokenAuth(options.apiToken, options.login));

  // No name or id is this long; refused here, before a store is asked for a key DynamoDB rejects with an error.
  app.use('*', async (c, next) => {
    const segment = new URL(c.req.url).pathname.split('/').find((s) => s.length > MAX_PATH_SEGMENT);
    if (segment !== undefined) return problem(c, 400, `a path segment is ${segment.length} characters; names and ids are at most ${MAX_PATH_SEGMENT}`, { field: 'path' });
    return next();
  });

  // Route modules are mounted here, one per resource family.
  // Before the session routes: it serves POST /v3/sessions/plan, which their /v3/sessions/{name} 405 would take.
  app.route('/apis/cfs', cfsAutomationRoutes(ports));
  app.route('/apis/cfs', cfsSessionRoutes(ports));
  app.route('/apis/cfs', cfsSessionOperationRoutes(ports));
  app.route('/apis/cfs', cfsSessionChangesRoutes(ports));
  app.route('/apis/cfs', cfsConfigurationRoutes(ports));
  app.route('/apis/cfs', cfsSourceRoutes(ports));
  app.route('/apis/cfs', cfsOptionsRoutes(ports));
  app.route('/', productSettingsRoutes(ports));
  app.route('/', imsImageRoutes(ports, { uploadUrlSeconds: options.uploadUrlSeconds }));
  // After the image routes: it answers their artifact routes' other methods with 405.
  app.route('/', cfsServiceRoutes(ports));
  app.route('/', imsServiceRoutes(ports));
  const artifacts = artifactRoutes(ports.artifacts);
  app.route('/', artifacts);
  app.route('/', dashboardRoutes(options.dashboardDir));
  if (options.login) app.route('/', dashboardLoginRoutes(options.login));
  // The page's read-only view of the API, answered by this same app (behind the same token).
  app.route('/', dashboardApiMirror((request) => app.fetch(request)));
  // Generated once, describing exactly the routes mounted here (the artifact endpoint only where the store signs its own URLs).
  let document: object | undefined;
  app.get(OPENAPI_PATH, (c) => c.json((document ??= openApiDocument({ artifactEndpoint: artifacts.routes.length > 0 }))));
  allowOnly(app, OPENAPI_PATH, ['GET']);

  app.notFound((c) => problem(c, 404, `no route for ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error, c) => {
    if (error instanceof HttpProblem) {
      for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
      return problem(c, error.status, error.message, { field: error.field });
    }
    const status = statusForError(error);
    const detail = status === 500 ? 'internal error; see the server log' : error.message;
    if (status === 500) console.error(error);
    return problem(c, status, detail, { field: (error as { field?: string }).field });
  });
  return app;
}
