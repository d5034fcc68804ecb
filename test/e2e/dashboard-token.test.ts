import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { launchChromium, TempDirs } from '../helpers/browser.ts';
import { TempRepos } from '../helpers/git-repo.ts';

/**
 * The dashboard in Debian's Chromium against an embedded server started with an API token (as
 * `cfs server` runs with CFS_API_TOKEN off loopback): the page loads without the token, asks for
 * it, shows the server's reason when a wrong one is given, and with the right one shows the
 * sessions, every data call carrying it. Screenshots go to DASHBOARD_SCREENSHOT_DIR or a temp dir.
 */

const TOKEN = 'e2e-dashboard-token-9f3c1a';

const repos = new TempRepos();
const dirs = new TempDirs();
let runtime: EmbeddedRuntime;
let context: BrowserContext;
let page: Page;
let shots: string;
const scriptErrors: string[] = [];
const dataCalls: { url: string; authorization: string | undefined; status?: number }[] = [];

async function api(method: string, path: string, body?: unknown): Promise<number> {
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await response.text();
  return response.status;
}

beforeAll(async () => {
  shots = process.env.DASHBOARD_SCREENSHOT_DIR ?? dirs.make('cfs-dashboard-token-shots-');
  mkdirSync(shots, { recursive: true });
  runtime = await startEmbeddedRuntime({ dataDir: dirs.make('cfs-dashboard-token-'), port: 0, apiToken: TOKEN });
  context = await launchChromium(dirs.make('cfs-chromium-'), { width: 1280, height: 800 });
  page = context.pages()[0] ?? (await context.newPage());
  // Script errors and refused styles fail the test; the expected 401s of data calls are checked on their own.
  page.on('pageerror', (error) => void scriptErrors.push(error.message));
  page.on('console', (message) => void (message.type() === 'error' && !message.text().includes('401') && scriptErrors.push(message.text())));
  page.on('response', (response) => {
    if (!/^(\/v1)?\/dashboard\/apis\//.test(new URL(response.url()).pathname)) return;
    dataCalls.push({ url: response.url(), authorization: response.request().headers().authorization, status: response.status() });
  });
}, 60_000);

/**
 * Serves the runtime under `/v1/` as API Gateway serves a stage (and answers 403 elsewhere, as it
 * does for a path with no resource), so the page is tested where it does not live at `/`.
 */
async function stagePrefixProxy(): Promise<{ url: string; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = [];
  const server: Server = createServer(async (req, res) => {
    paths.push(req.url ?? '');
    if (!req.url?.startsWith('/v1/')) {
      res.writeHead(403, { 'Content-Type': 'application/json' }).end('{"message":"Missing Authentication Token"}');
      return;
    }
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => ['accept', 'authorization'].includes(name))) as Record<string, string>;
    const upstream = await fetch(`${runtime.url}${req.url.slice('/v1'.length)}`, { method: req.method, headers });
    res.writeHead(upstream.status, Object.fromEntries(upstream.headers));
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

afterAll(async () => {
  await context?.close();
  await runtime?.close();
  repos.disposeAll();
  dirs.removeAll();
});

describe('the dashboard on a server that requires an API token', () => {
  it('asks for the token, shows why a wrong one was refused, and with the right one shows the sessions', async () => {
    // Arrange: a session that waits for its source image's rootfs, so it stays in the list as pending.
    const layer = repos.with({ 'site.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks: []\n' });
    expect(await api('PUT', '/apis/cfs/v3/configurations/token-config', { layers: [{ name: 'noop', clone_url: layer.url, commit: layer.commit, playbook: 'site.yml' }] })).toBe(200);
    const created = await fetch(`${runtime.url}/apis/ims/v3/images`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'token-base' }) });
    const source = (await created.json()) as { id: string };
    expect(await api('POST', '/apis/cfs/v3/sessions', { name: 'behind-a-token', configuration_name: 'token-config', target: { definition: 'image', groups: [{ name: 'Compute', members: [source.id] }] } })).toBe(201);

    // Act: open the page with no token.
    await page.goto(`${runtime.url}/?poll=250#/sessions`);
    // Assert: the page itself loaded (no token needed for it) and asks for the token, focus in the field.
    await expect.poll(() => page.locator('h1').textContent()).toBe('API token required');
    const field = page.getByLabel('API token', { exact: true });
    expect(await field.getAttribute('type')).toBe('password');
    expect(await page.evaluate('document.activeElement.id')).toBe('api-token');
    expect(await page.locator('#token-why').textContent()).toContain('kept in this browser tab only');
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(dataCalls[0]).toMatchObject({ authorization: undefined, status: 401 });
    expect(new URL(dataCalls[0]!.url).pathname).toBe('/dashboard/apis/cfs/v3/sessions');
    await page.screenshot({ path: join(shots, 'dashboard-token.png'), fullPage: true });

    // Act: a wrong token, typed and sent with the keyboard only.
    await page.keyboard.type('not-the-token');
    await page.keyboard.press('Enter');
    // Assert: the form again, with the server's problem detail, and the wrong token not kept.
    await expect.poll(() => page.getByRole('alert').textContent()).toBe('The server refused that token: the bearer token is not valid');
    expect(await page.locator('h1').textContent()).toBe('API token required');
    expect(await field.getAttribute('aria-invalid')).toBe('true');
    expect(await field.getAttribute('aria-describedby')).toBe('token-why token-error');
    expect(await page.evaluate('document.activeElement.id')).toBe('api-token');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    expect(dataCalls.at(-1)).toMatchObject({ authorization: 'Bearer not-the-token', status: 401 });

    // Act: the right token, through the button this time.
    await field.fill(TOKEN);
    await page.getByRole('button', { name: 'Use this token' }).click();
    // Assert: the sessions list, with the waiting session, and every data call since carries the token.
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sessions');
    const row = page.locator('tr[data-session="behind-a-token"]');
    await expect.poll(() => row.locator('.badge').textContent(), { timeout: 10_000 }).toBe('pending');
    expect(await row.textContent()).toContain('token-config');
    const since = dataCalls.slice(dataCalls.findIndex((c) => c.authorization === `Bearer ${TOKEN}`));
    expect(since.length).toBeGreaterThan(0);
    expect(since.every((c) => c.authorization === `Bearer ${TOKEN}` && c.status === 200)).toBe(true);

    // Act: another view, and a reload of the tab.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Images' }).click();
    await expect.poll(() => page.locator(`tr[data-image="${source.id}"]`).count()).toBe(1);
    await page.goto(`${runtime.url}/?poll=250#/sessions/behind-a-token`);
    // Assert: the token is kept for the tab, so the session page opens without asking again.
    await expect.poll(() => page.locator('article[data-session="behind-a-token"]').getAttribute('data-state')).toBe('pending');
    expect(await page.locator('h1').textContent()).not.toBe('API token required');
    expect(dataCalls.filter((c) => c.status === 401)).toHaveLength(2);
    expect(scriptErrors).toEqual([]);
  }, 90_000);

  it('works under a stage prefix, as API Gateway serves it, calling the API relative to its own address', async () => {
    // Arrange: another origin, so this tab has no token for it yet.
    const stage = await stagePrefixProxy();
    try {
      // Act
      await page.goto(`${stage.url}/v1/?poll=250#/sessions`);
      await expect.poll(() => page.locator('h1').textContent()).toBe('API token required');
      await page.getByLabel('API token', { exact: true }).fill(TOKEN);
      await page.keyboard.press('Enter');
      // Assert: the sessions, every file and data call made under /v1/, and none outside it.
      await expect.poll(() => page.locator('tr[data-session="behind-a-token"] .badge').textContent(), { timeout: 10_000 }).toBe('pending');
      expect(stage.paths.filter((path) => !path.startsWith('/v1/'))).toEqual([]);
      expect(stage.paths).toEqual(expect.arrayContaining(['/v1/?poll=250', '/v1/dashboard/app.js', '/v1/dashboard/style.css']));
      expect(stage.paths.some((path) => path.startsWith('/v1/dashboard/apis/cfs/v3/sessions?'))).toBe(true);
      expect(scriptErrors).toEqual([]);
    } finally {
      await stage.close();
    }
  }, 60_000);
});
