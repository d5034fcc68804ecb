import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { TempRepos } from '../helpers/git-repo.ts';

/**
 * The dashboard in Debian's Chromium (driven by playwright-core, no downloaded browser) against
 * the embedded runtime running a real session: the list and the session page follow it from
 * pending to complete, the layer's log is followed while Ansible runs, and the result image's
 * lineage, manifest and automations are shown. Screenshots go to DASHBOARD_SCREENSHOT_DIR
 * (docs/ holds the committed ones) or to a temp dir.
 */

const CHROMIUM = '/usr/bin/chromium';
// The page polls every 250 ms here (`?poll=`) so each state is seen well within its lifetime.
const POLL = '?poll=250';

interface ImageView {
  id: string;
  name: string;
  link?: { path: string };
}

const repos = new TempRepos();
const dirs: string[] = [];
let runtime: EmbeddedRuntime;
let context: BrowserContext;
let page: Page;
let shots: string;

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

function storedPath(link: string): string {
  return join(runtime.dataDir, 'artifacts', ...link.replace(/^s3:\/\//, '').split('/'));
}

/** Gives an image record with no rootfs the rootfs of `donor`, through the upload URL and manifest flow a client uses. */
async function registerRootfs(recordId: string, donor: ImageView): Promise<void> {
  const manifest = (await api<{ artifacts: { type: string; md5: string; sha256: string; size: number; link: { path: string } }[] }>('GET', `/apis/ims/v3/images/${donor.id}/manifest`)).body;
  const rootfs = manifest.artifacts.find((a) => a.type.endsWith('rootfs.squashfs'))!;
  const { body: upload } = await api<{ url: string }>('POST', `/apis/ims/v3/images/${recordId}/artifacts/rootfs/upload-url`, {});
  const put = await fetch(upload.url, { method: 'PUT', body: readFileSync(storedPath(rootfs.link.path)) });
  expect(put.status).toBeLessThan(300);
  const registered = await api('PUT', `/apis/ims/v3/images/${recordId}/manifest`, { artifacts: [{ name: 'rootfs', size: rootfs.size, md5: rootfs.md5, sha256: rootfs.sha256 }] });
  expect(registered.status).toBeLessThan(300);
}

beforeAll(async () => {
  ensureBuilt();
  shots = process.env.DASHBOARD_SCREENSHOT_DIR ?? tempDir('cfs-dashboard-shots-');
  mkdirSync(shots, { recursive: true });
  runtime = await startEmbeddedRuntime({ dataDir: tempDir('cfs-dashboard-'), port: 0 });
  context = await chromium.launchPersistentContext(tempDir('cfs-chromium-'), {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
}, 60_000);

afterAll(async () => {
  await context?.close();
  await runtime?.close();
  repos.disposeAll();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('the dashboard in a real browser', () => {
  it('follows a session from pending to complete, its log while it runs, and its result image\'s lineage', async () => {
    // Arrange: a source record still waiting for its rootfs keeps the session pending until the test gives it one.
    const donor = JSON.parse((await cfsBin({ CFS_API_URL: runtime.url }, 'images', 'build-sample', '--name', 'donor', '--format', 'json')).out) as ImageView;
    const source = (await api<ImageView>('POST', '/apis/ims/v3/images', { name: 'compute-base' })).body;
    const layer = repos.with({
      'site.yml': [
        '- hosts: cfs_image',
        '  gather_facts: false',
        '  tasks:',
        '    - debug: { msg: "hello from the dashboard layer" }',
        '    - pause: { seconds: 4 }',
        '    - copy: { dest: /etc/motd, content: "customized\\n" }',
      ].join('\n'),
    });
    expect((await api('PUT', '/apis/cfs/v3/configurations/compute-config', { layers: [{ name: 'motd', clone_url: layer.url, commit: layer.commit, playbook: 'site.yml' }] })).status).toBe(200);
    await page.goto(`${runtime.url}/${POLL}#/sessions`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sessions');
    await expect.poll(() => page.locator('tbody').textContent()).toBe('No sessions match.');

    // Act: create the session; the list shows it without a reload.
    const created = await api('POST', '/apis/cfs/v3/sessions', {
      name: 'compute-motd',
      configuration_name: 'compute-config',
      tags: { team: 'dashboard' },
      target: { definition: 'image', groups: [{ name: 'Compute', members: [source.id] }] },
    });
    // Assert
    expect(created.status).toBe(201);
    const listRow = page.locator('tr[data-session="compute-motd"]');
    await expect.poll(() => listRow.locator('.badge').textContent(), { timeout: 10_000 }).toBe('pending');
    expect(await listRow.textContent()).toContain('team=dashboard');

    // Act: the filters narrow the list live (a select applies at once).
    await page.getByLabel('Status').selectOption('complete');
    // Assert
    await expect.poll(() => new URL(page.url()).hash).toBe('#/sessions?status=complete');
    await expect.poll(() => page.locator('tbody').textContent()).toBe('No sessions match.');
    await page.getByLabel('Status').selectOption('pending');
    await page.getByLabel('Tags').fill('team=dashboard');
    await page.getByLabel('Tags').press('Enter');
    await expect.poll(() => page.locator('tr[data-session="compute-motd"]').count()).toBe(1);

    // Act: open the session page from the list by keyboard.
    await page.getByRole('link', { name: 'compute-motd' }).focus();
    await page.keyboard.press('Enter');
    const article = page.locator('article[data-session="compute-motd"]');
    // Assert: pending, waiting for the rootfs, and saying which image.
    await expect.poll(() => article.getAttribute('data-state')).toBe('pending');
    await expect.poll(() => article.locator('dl.facts').textContent()).toContain(source.id);
    expect(await article.locator('#target-title + table').textContent()).toContain('Compute');
    await page.screenshot({ path: join(shots, 'dashboard-pending.png'), fullPage: true });

    // Act: the rootfs arrives; the session runs.
    await registerRootfs(source.id, donor);
    // Assert: running, with the layer's log followed before the layer ends.
    await expect.poll(() => article.getAttribute('data-state'), { timeout: 30_000 }).toBe('running');
    const log = page.locator('pre.log[data-layer="0"]');
    await expect.poll(() => log.textContent(), { timeout: 30_000 }).toContain('hello from the dashboard layer');
    expect(await article.getAttribute('data-state')).toBe('running');
    expect(await page.locator('section.log-layer').first().getAttribute('data-complete')).toBe('false');
    expect(await page.locator('ol.timeline li[data-step="ansible"]').count()).toBeGreaterThan(0);

    // Assert: complete and succeeded, every step with a duration, the log whole, the result linked.
    await expect.poll(() => article.getAttribute('data-state'), { timeout: 120_000 }).toBe('succeeded');
    await expect.poll(() => page.locator('section.log-layer').first().getAttribute('data-complete')).toBe('true');
    expect(await log.textContent()).toContain('PLAY RECAP');
    const steps = await page.locator('ol.timeline li').evaluateAll((items) => items.map((li) => [li.getAttribute('data-step'), li.getAttribute('data-state'), li.querySelector('.duration')?.textContent ?? '']));
    expect(steps.map(([name]) => name)).toEqual(expect.arrayContaining(['validate', 'stage', 'ansible', 'package', 'record']));
    expect(steps.every(([, state, duration]) => state === 'succeeded' && /\d s$/.test(duration!))).toBe(true);
    expect(await page.locator('#failure-title').count()).toBe(0);
    const session = (await api<{ status: { artifacts: { image_id: string; result_id: string }[] } }>('GET', '/apis/cfs/v3/sessions/compute-motd')).body;
    const resultId = session.status.artifacts[0]!.result_id;
    const artifactRow = page.locator(`tr[data-result="${resultId}"]`);
    expect(await artifactRow.textContent()).toContain('compute-base_cfs_compute-motd');
    await page.screenshot({ path: join(shots, 'dashboard-session.png'), fullPage: true });

    // Act: follow the artifact's lineage link to the result image.
    await artifactRow.getByRole('link', { name: 'Lineage' }).click();
    const image = page.locator(`article[data-image="${resultId}"][data-loaded="true"]`);
    await expect.poll(() => image.count()).toBe(1);
    // Assert: the graph goes source image -> session -> result image, each node a link, this image marked.
    const graph = page.locator('svg[data-testid="lineage-graph"]');
    const nodes = await graph.locator('[data-kind]').evaluateAll((els) => els.map((el) => [el.getAttribute('data-kind'), el.getAttribute('data-id'), el.getAttribute('href'), el.getAttribute('aria-current')]));
    expect(nodes).toEqual([
      ['image', source.id, `#/images/${source.id}`, null],
      ['session', 'compute-motd', '#/sessions/compute-motd', null],
      ['image', resultId, `#/images/${resultId}`, 'page'],
    ]);
    expect(await graph.locator('path').count()).toBe(2);
    expect(await page.evaluate('document.activeElement?.id')).toBe('lineage');
    expect(await page.locator('dl.facts').textContent()).toContain('compute-config');
    // Assert: the manifest with its checksums, as the API has them.
    const manifest = (await api<{ artifacts: { type: string; sha256: string; md5: string }[] }>('GET', `/apis/ims/v3/images/${resultId}/manifest`)).body;
    const rootfs = manifest.artifacts.find((a) => a.type.endsWith('rootfs.squashfs'))!;
    const rootfsRow = page.locator(`table.manifest tr[data-type="${rootfs.type}"]`);
    expect(await rootfsRow.textContent()).toContain(rootfs.sha256);
    expect(await rootfsRow.textContent()).toContain(rootfs.md5);
    expect(await page.locator('#automations-title + p').textContent()).toBe('No automation built this image or skipped it.');
    await page.locator('#lineage').screenshot({ path: join(shots, 'dashboard-lineage.png') });

    // Act: the source's node in the graph leads to the source image by keyboard.
    await graph.locator(`a[data-id="${source.id}"]`).focus();
    await page.keyboard.press('Enter');
    // Assert
    await expect.poll(() => page.locator(`article[data-image="${source.id}"][data-loaded="true"] h1`).textContent()).toBe('Image compute-base');
  }, 180_000);

  it('serves the page at / with a same-origin policy, and unknown API paths still get problem+json', async () => {
    // Act
    const root = await fetch(`${runtime.url}/`);
    const script = await fetch(`${runtime.url}/dashboard/app.js`);
    const climbing = await fetch(`${runtime.url}/dashboard/..%2Fpackage.json`);
    const posted = await fetch(`${runtime.url}/`, { method: 'POST' });
    const unknown = await fetch(`${runtime.url}/apis/cfs/v3/nothing-here`);
    // Assert
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toContain('text/html');
    expect(root.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await root.text()).toContain('<main id="main"');
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(climbing.status).toBe(404);
    expect(posted.status).toBe(405);
    expect(posted.headers.get('allow')).toBe('GET, HEAD');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('application/problem+json');
  });
});
