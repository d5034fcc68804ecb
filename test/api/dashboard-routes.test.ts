import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectDashboardDir } from '../../functions/adapters/local/package-root.ts';
import { createApp } from '../../functions/api/app.ts';
import { storedConfiguration } from '../helpers/cfs-fakes.ts';
import { call, startCfsTestApp, type CfsTestApp } from './cfs-app.ts';

/**
 * The dashboard's routes on an app that requires a bearer token (the embedded server off
 * loopback): its static files need none, its read-only mirror of the API (`/dashboard/apis/...`)
 * needs the token like every other data path, and answers only GET and HEAD.
 */
const TOKEN = 'dashboard-test-token';
const bearer = { authorization: `Bearer ${TOKEN}` };

describe('the dashboard routes behind an API token', () => {
  let t: CfsTestApp;
  let app: Hono;
  beforeAll(async () => {
    t = await startCfsTestApp();
    app = createApp(t.ports, { apiToken: TOKEN, dashboardDir: projectDashboardDir() });
    await t.ports.configurations.put(storedConfiguration());
  });
  afterAll(() => t.close());

  it('serves the page, its scripts and styles without a token', async () => {
    // Act
    const page = await app.request('/');
    const script = await app.request('/dashboard/app.js');
    const style = await app.request('/dashboard/style.css', { method: 'HEAD' });
    // Assert
    expect([page.status, script.status, style.status]).toEqual([200, 200, 200]);
    expect(await page.text()).toContain('<main id="main"');
    expect(script.headers.get('content-type')).toContain('text/javascript');
  });

  it('still requires the token for data, on the API and on the mirror alike', async () => {
    // Act
    const api = await call(app, 'GET', '/apis/cfs/v3/configurations');
    const mirror = await call(app, 'GET', '/dashboard/apis/cfs/v3/configurations');
    const wrong = await call(app, 'GET', '/dashboard/apis/cfs/v3/configurations', undefined, { authorization: `Bearer ${TOKEN}x` });
    const unknownFile = await call(app, 'GET', '/dashboard/apis');
    // Assert
    for (const response of [api, mirror, wrong, unknownFile]) {
      expect(response.status).toBe(401);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
    }
    expect(mirror.body.detail).toBe('an Authorization: Bearer token is required (`cfs auth token` prints it on the server\'s machine)');
    expect(wrong.body.detail).toBe('the bearer token is not valid');
  });

  it('answers a GET of the mirror as the same GET of the API, query string included', async () => {
    // Act
    const direct = await call(app, 'GET', '/apis/cfs/v3/configurations?limit=1', undefined, bearer);
    const mirrored = await call(app, 'GET', '/dashboard/apis/cfs/v3/configurations?limit=1', undefined, bearer);
    const one = await call(app, 'GET', '/dashboard/apis/cfs/v3/configurations/configurations-example', undefined, bearer);
    const head = await app.request('/dashboard/apis/cfs/v3/configurations', { method: 'HEAD', headers: bearer });
    const missing = await call(app, 'GET', '/dashboard/apis/cfs/v3/configurations/nothing-here', undefined, bearer);
    // Assert
    expect(mirrored.status).toBe(200);
    expect(mirrored.body).toEqual(direct.body);
    expect(mirrored.body.configurations.map((c: { name: string }) => c.name)).toEqual(['configurations-example']);
    expect(one.body.name).toBe('configurations-example');
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect(missing.status).toBe(404);
    expect(missing.body.instance).toBe('/apis/cfs/v3/configurations/nothing-here');
  });

  it('refuses every method but GET and HEAD on the mirror with a 405, and changes nothing', async () => {
    // Act
    const posted = await call(app, 'POST', '/dashboard/apis/cfs/v3/sessions', { name: 'x', configuration_name: 'configurations-example' }, bearer);
    const deleted = await call(app, 'DELETE', '/dashboard/apis/cfs/v3/configurations/configurations-example', undefined, bearer);
    const patched = await call(app, 'PATCH', '/dashboard/apis/cfs/v3/options', { session_ttl: '1d' }, bearer);
    const after = await call(app, 'GET', '/apis/cfs/v3/configurations/configurations-example', undefined, bearer);
    // Assert
    for (const response of [posted, deleted, patched]) {
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe('GET, HEAD');
      expect(response.headers.get('content-type')).toBe('application/problem+json');
    }
    expect(after.status).toBe(200);
    expect(t.workflow.started).toEqual([]);
  });

  it('keeps the mirror under /apis/: an encoded climb resolves before the mirror sees it', async () => {
    // Act: `%2e%2e` is `..` to a URL parser, so this is a plain GET of /dashboard/app.js.
    const climbed = await app.request('/dashboard/apis/%2e%2e/app.js');
    // Assert
    expect(climbed.status).toBe(200);
    expect(climbed.headers.get('content-type')).toContain('text/javascript');
  });
});
