import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { bearerTokenAuth, DashboardLogin, dashboardLoginRoutes, isLoopbackHost } from '../../functions/api/auth.ts';
import { originGuard } from '../../functions/api/origin-guard.ts';

function appWithToken(token: string): Hono {
  const app = new Hono();
  app.use('*', bearerTokenAuth(token));
  app.get('/apis/cfs/v3/sessions', (c) => c.json([]));
  app.get('/artifacts/*', (c) => c.text('bytes'));
  return app;
}

describe('the bearer token middleware', () => {
  it('answers 401 problem+json without a token and with a wrong one, and lets the right one through', async () => {
    // Arrange
    const app = appWithToken('s3cret');
    // Act
    const none = await app.request('/apis/cfs/v3/sessions');
    const wrong = await app.request('/apis/cfs/v3/sessions', { headers: { authorization: 'Bearer s3cre' } });
    const basic = await app.request('/apis/cfs/v3/sessions', { headers: { authorization: 'Basic s3cret' } });
    const right = await app.request('/apis/cfs/v3/sessions', { headers: { authorization: 'Bearer s3cret' } });
    // Assert
    for (const response of [none, wrong, basic]) {
      expect(response.status).toBe(401);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
    }
    expect(((await none.json()) as { detail: string }).detail).toContain('Authorization: Bearer');
    expect(right.status).toBe(200);
  });

  it('leaves signed artifact URLs to their own signature', async () => {
    // Act
    const response = await appWithToken('s3cret').request('/artifacts/boot-images/x/rootfs');
    // Assert
    expect(response.status).toBe(200);
  });

  it('refuses an empty token at construction', () => {
    // Act / Assert
    expect(() => bearerTokenAuth('')).toThrow(/must not be empty/);
  });

  it('counts only loopback addresses as safe without a token', () => {
    // Act / Assert
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.10', '127.0.0.1.example.com'].some(isLoopbackHost)).toBe(false);
  });
});

function appWithLogin(login: DashboardLogin): Hono {
  const app = new Hono();
  app.use('*', bearerTokenAuth('s3cret', login));
  app.route('/', dashboardLoginRoutes(login));
  app.on(['GET', 'POST'], '/apis/cfs/v3/sessions', (c) => c.json([]));
  app.get('/apis/cfs/healthz', (c) => c.json({ ok: true }));
  app.get('/apis/ims/version', (c) => c.json({ version: '3' }));
  return app;
}

const cookieOf = (response: Response) => response.headers.get('set-cookie')!.split(';')[0]!;

describe('the dashboard sign-in link', () => {
  it('trades a one-time code for an HttpOnly SameSite=Strict cookie once, and redirects to the page', async () => {
    // Arrange
    const login = new DashboardLogin('s3cret', { secure: false });
    const app = appWithLogin(login);
    const code = login.mintCode();
    // Act
    const first = await app.request(`/login?code=${code}`);
    const again = await app.request(`/login?code=${code}`);
    const unknown = await app.request('/login?code=not-a-code');
    // Assert
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/');
    expect(first.headers.get('set-cookie')).toMatch(/^cfs_dashboard=[^;]+; Path=\/; Max-Age=604800; HttpOnly; SameSite=Strict$/);
    expect(first.headers.get('cache-control')).toBe('no-store');
    for (const refused of [again, unknown]) {
      expect(refused.status).toBe(401);
      expect(refused.headers.get('set-cookie')).toBeNull();
    }
    expect(((await again.json()) as { detail: string }).detail).toContain('used already');
  });

  it('marks the cookie Secure over TLS, and refuses an expired code', async () => {
    // Arrange
    let now = 1_000_000;
    const login = new DashboardLogin('s3cret', { secure: true, now: () => now });
    const app = appWithLogin(login);
    const fresh = login.mintCode(60_000);
    const stale = login.mintCode(60_000);
    // Act
    const ok = await app.request(`/login?code=${fresh}`);
    now += 60_001;
    const late = await app.request(`/login?code=${stale}`);
    // Assert
    expect(ok.headers.get('set-cookie')).toMatch(/; SameSite=Strict; Secure$/);
    expect(late.status).toBe(401);
  });

  it('lets the cookie read (GET) but not write (POST), and refuses a forged, another server\'s or an expired cookie', async () => {
    // Arrange
    let now = Date.now();
    const login = new DashboardLogin('s3cret', { secure: false, now: () => now, maxAgeSeconds: 60 });
    const app = appWithLogin(login);
    const cookie = cookieOf(await app.request(`/login?code=${login.mintCode()}`));
    const otherServer = new DashboardLogin('other-token', { secure: false });
    const foreign = cookieOf(await appWithLogin(otherServer).request(`/login?code=${otherServer.mintCode()}`));
    const forged = cookie.replace(/\.[^.]+$/, '.' + 'A'.repeat(43));
    // Act
    const read = await app.request('/apis/cfs/v3/sessions', { headers: { cookie: `other=1; ${cookie}` } });
    const write = await app.request('/apis/cfs/v3/sessions', { method: 'POST', headers: { cookie } });
    const refused = await Promise.all([forged, foreign].map((c) => app.request('/apis/cfs/v3/sessions', { headers: { cookie: c } })));
    now += 61_000;
    const expired = await app.request('/apis/cfs/v3/sessions', { headers: { cookie } });
    // Assert
    expect(read.status).toBe(200);
    expect(write.status).toBe(401);
    expect(refused.map((r) => r.status)).toEqual([401, 401]);
    expect(expired.status).toBe(401);
  });

  it('answers the health and version routes without a credential, and nothing else', async () => {
    // Arrange
    const app = appWithLogin(new DashboardLogin('s3cret', { secure: false }));
    // Act
    const health = await app.request('/apis/cfs/healthz');
    const version = await app.request('/apis/ims/version');
    const postHealth = await app.request('/apis/cfs/healthz', { method: 'POST' });
    const sessions = await app.request('/apis/cfs/v3/sessions');
    // Assert
    expect([health.status, version.status]).toEqual([200, 200]);
    expect([postHealth.status, sessions.status]).toEqual([401, 401]);
  });
});

function guarded(): Hono {
  const app = new Hono();
  app.use('*', originGuard({ origins: ['http://127.0.0.1:8787', 'http://localhost:8787', 'http://[::1]:8787', 'https://cfs.example.org'] }));
  app.on(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], '/apis/cfs/v3/configurations/x', (c) => c.json({ ok: true }));
  app.put('/artifacts/*', (c) => c.json({ ok: true }));
  return app;
}

/** A request to the guarded app as Node's server hands it over: with the Host header the client sent. */
const at = (host: string, init: RequestInit = {}) => guarded().request('http://127.0.0.1:8787/apis/cfs/v3/configurations/x', { ...init, headers: { ...(init.headers as Record<string, string>), host } });

describe('the origin guard', () => {
  it("accepts only the server's own Host names: loopback with its port and the public name", async () => {
    // Act
    const own = await Promise.all(['127.0.0.1:8787', 'localhost:8787', 'LOCALHOST:8787', '[::1]:8787', 'cfs.example.org', 'cfs.example.org:443'].map((h) => at(h)));
    const foreign = await Promise.all(['attacker.example:8787', '127.0.0.1:9999', '127.0.0.1', 'cfs.example.org:8787', 'user@127.0.0.1:8787'].map((h) => at(h)));
    // Assert
    expect(own.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(foreign.map((r) => r.status)).toEqual([421, 421, 421, 421, 421]);
    expect(((await foreign[0]!.json()) as { title: string; field: string })).toMatchObject({ title: 'Misdirected Request', field: 'host' });
  });

  it('refuses a foreign or null Origin and a cross-site request, a same-site one only when it writes', async () => {
    // Arrange
    const json = { 'content-type': 'application/json' };
    // Act
    const foreignOrigin = await at('127.0.0.1:8787', { method: 'PUT', headers: { ...json, origin: 'http://attacker.example' }, body: '{}' });
    const nullOrigin = await at('127.0.0.1:8787', { method: 'PUT', headers: { ...json, origin: 'null' }, body: '{}' });
    const otherPort = await at('127.0.0.1:8787', { method: 'PUT', headers: { ...json, origin: 'http://127.0.0.1:9999' }, body: '{}' });
    const crossSiteRead = await at('127.0.0.1:8787', { headers: { 'sec-fetch-site': 'cross-site' } });
    const sameSiteWrite = await at('127.0.0.1:8787', { method: 'DELETE', headers: { 'sec-fetch-site': 'same-site' } });
    const sameSiteRead = await at('127.0.0.1:8787', { headers: { 'sec-fetch-site': 'same-site' } });
    const ownOrigin = await at('127.0.0.1:8787', { method: 'PUT', headers: { ...json, origin: 'http://127.0.0.1:8787', 'sec-fetch-site': 'same-origin' }, body: '{}' });
    // Assert
    expect([foreignOrigin, nullOrigin, otherPort, crossSiteRead, sameSiteWrite].map((r) => r.status)).toEqual([403, 403, 403, 403, 403]);
    expect(((await foreignOrigin.json()) as { field: string }).field).toBe('origin');
    expect(((await crossSiteRead.json()) as { field: string }).field).toBe('sec-fetch-site');
    expect([sameSiteRead.status, ownOrigin.status]).toEqual([200, 200]);
  });

  it('takes a body only as application/json on the API, and as raw bytes or an IMS type on artifact URLs; bodyless DELETE and PATCH need no type', async () => {
    // Act
    const textPlain = await at('127.0.0.1:8787', { method: 'PUT', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: '{}' });
    const form = await at('127.0.0.1:8787', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=b' });
    const emptyForm = await at('127.0.0.1:8787', { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x', 'content-length': '0' } });
    const untyped = await at('127.0.0.1:8787', { method: 'POST', headers: { 'content-length': '2' }, body: new Blob(['{}']) });
    const jsonBody = await at('127.0.0.1:8787', { method: 'PUT', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{}' });
    const bodylessDelete = await at('127.0.0.1:8787', { method: 'DELETE', headers: { 'content-length': '0' } });
    const bodylessPatch = await at('127.0.0.1:8787', { method: 'PATCH' });
    const artifact = (type: string | undefined) =>
      guarded().request('http://127.0.0.1:8787/artifacts/boot-images/a/rootfs', { method: 'PUT', headers: { host: '127.0.0.1:8787', ...(type ? { 'content-type': type } : {}) }, body: new Uint8Array([1, 2]) });
    const artifacts = await Promise.all(['application/octet-stream', 'application/vnd.cray.image.rootfs.squashfs', undefined, 'text/plain', 'application/x-www-form-urlencoded'].map(artifact));
    // Assert
    expect([textPlain, form, emptyForm, untyped].map((r) => r.status)).toEqual([415, 415, 415, 415]);
    expect(((await textPlain.json()) as { detail: string; field: string })).toMatchObject({ detail: 'a PUT body must be application/json, not text/plain', field: 'content-type' });
    expect([jsonBody, bodylessDelete, bodylessPatch].map((r) => r.status)).toEqual([200, 200, 200]);
    expect(artifacts.map((r) => r.status)).toEqual([200, 200, 200, 415, 415]);
  });
});
