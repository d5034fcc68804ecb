import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { BIN, cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { launchChromium, TempDirs } from '../helpers/browser.ts';
import { TempRepos } from '../helpers/git-repo.ts';
import { waitFor } from '../helpers/wait.ts';
import { bearer, cliEnv } from '../helpers/api-token.ts';
import { callApi } from '../helpers/runtime-api.ts';
import { storedPath as storedPathIn } from '../helpers/stored-image.ts';

/**
 * The dashboard in Debian's Chromium (driven by playwright-core, no downloaded browser) against
 * the embedded runtime running a real session: the list and the session page follow it from
 * pending to complete, the layer's log is followed while Ansible runs, and the result image's
 * lineage, manifest and automations are shown. Screenshots go to DASHBOARD_SCREENSHOT_DIR
 * (docs/ holds the committed ones) or to a temp dir.
 */

// The page polls every 250 ms here (`?poll=`) so each state is seen well within its lifetime.
const POLL = '?poll=250';

interface ImageView {
  id: string;
  name: string;
  link?: { path: string };
}

const repos = new TempRepos();
const dirs = new TempDirs();
let runtime: EmbeddedRuntime;
let context: BrowserContext;
let page: Page;
let shots: string;
let donor: ImageView;
const pageErrors: string[] = [];

const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(runtime, method, path, body);

/** The stored file of an `s3://` link in the runtime's data directory. */
const storedPath = (link: string) => storedPathIn(runtime.dataDir, link);

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
  shots = process.env.DASHBOARD_SCREENSHOT_DIR ?? dirs.make('cfs-dashboard-shots-');
  mkdirSync(shots, { recursive: true });
  runtime = await startEmbeddedRuntime({ dataDir: dirs.make('cfs-dashboard-'), port: 0 });
  context = await launchChromium(dirs.make('cfs-chromium-'), { width: 1280, height: 900 });
  page = context.pages()[0] ?? (await context.newPage());
  // Anything the page logs as an error (a script error, a style the content security policy refused) fails the tests.
  page.on('console', (message) => void (message.type() === 'error' && pageErrors.push(message.text())));
  page.on('pageerror', (error) => void pageErrors.push(error.message));
  page.on('response', (response) => void (response.status() >= 400 && pageErrors.push(`${response.status()} ${response.url()}`)));
  // Signed in as the server's user is: through the one-time link `cfs server` prints, which leaves the dashboard's cookie.
  await page.goto(`${runtime.url}/login?code=${runtime.login.mintCode()}`);
  donor = JSON.parse((await cfsBin(cliEnv(runtime), 'images', 'build-sample', '--name', 'donor', '--format', 'json')).out) as ImageView;
}, 60_000);

afterAll(async () => {
  await context?.close();
  await runtime?.close();
  repos.disposeAll();
  dirs.removeAll();
});

describe('the dashboard in a real browser', () => {
  it('follows a session from pending to complete, its log while it runs, and its result image\'s lineage', async () => {
    // Arrange: a source record still waiting for its rootfs keeps the session pending until the test gives it one.
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
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to content');

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
    // The layer's bar spans most of the session (the pause), drawn to scale.
    const layerBar = await page.locator('ol.timeline li[data-step="ansible"]').last().locator('.bar').evaluate((el) => el.getBoundingClientRect().width / el.parentElement!.getBoundingClientRect().width);
    expect(layerBar).toBeGreaterThan(0.25);
    expect(await page.locator('#failure-title').count()).toBe(0);
    const session = (await api<{ status: { artifacts: { image_id: string; result_id: string }[] } }>('GET', '/apis/cfs/v3/sessions/compute-motd')).body;
    const resultId = session.status.artifacts[0]!.result_id;
    const artifactRow = page.locator(`tr[data-result="${resultId}"]`);
    expect(await artifactRow.textContent()).toContain('compute-base_cfs_compute-motd');
    await page.screenshot({ path: join(shots, 'dashboard-session.png'), fullPage: true });

    // Act: an automation over the same source and configuration finds those inputs already built and skips.
    expect((await api('PUT', '/apis/cfs/v3/automations/compute-nightly', { configuration_name: 'compute-config', source: { name_pattern: 'compute-base' }, groups: ['Compute'] })).status).toBe(200);
    const run = await api<{ outcome: string; reason: string }>('POST', '/apis/cfs/v3/automations/compute-nightly/run');
    expect(run.body.outcome).toBe('skipped');

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
    // Assert: the automation's skip, because this image already carries the fingerprint of those inputs.
    const skip = page.locator('section[aria-labelledby="automations-title"] tbody tr');
    expect(await skip.count()).toBe(1);
    expect(await skip.locator('th, td').allTextContents()).toEqual(expect.arrayContaining(['compute-nightly', 'run', 'skipped', 'found its inputs already built here', run.body.reason]));

    // Act: a second generation, built from the result by another session.
    const fast = repos.with({ 'again.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - copy: { dest: /etc/issue, content: "again\\n" }\n' });
    await api('PUT', '/apis/cfs/v3/configurations/again-config', { layers: [{ name: 'issue', clone_url: fast.url, commit: fast.commit, playbook: 'again.yml' }] });
    await api('POST', '/apis/cfs/v3/sessions', { name: 'compute-issue', configuration_name: 'again-config', target: { definition: 'image', groups: [{ name: 'Compute', members: [resultId] }] } });
    const second = await waitFor(async () => {
      const { body } = await api<{ status: { session: { status: string; succeeded: string }; artifacts: { result_id: string }[] } }>('GET', '/apis/cfs/v3/sessions/compute-issue');
      return body.status.session.status === 'complete' ? body : undefined;
    }, 120_000, 'the second-generation session');
    expect(second.status.session.succeeded).toBe('true');
    const grandchildId = second.status.artifacts[0]!.result_id;
    // The page is still at this address (the Lineage link), so reload it to read the registry again.
    expect(new URL(page.url()).hash).toBe(`#/images/${resultId}?section=lineage`);
    await page.reload();
    await expect.poll(() => image.count()).toBe(1);
    // Assert: three generations in one graph, the middle one marked as this image.
    const generations = await graph.locator('[data-kind]').evaluateAll((els) => els.map((el) => [el.getAttribute('data-id'), el.getAttribute('aria-current')]));
    expect(generations).toEqual([
      [source.id, null],
      ['compute-motd', null],
      [resultId, 'page'],
      ['compute-issue', null],
      [grandchildId, null],
    ]);
    expect(await page.locator('#lineage details li').allTextContents()).toContain(`compute-base_cfs_compute-motd_cfs_compute-issue (${grandchildId})`);
    await page.screenshot({ path: join(shots, 'dashboard-lineage.png'), fullPage: true });

    // Act: the source's node in the graph leads to the source image by keyboard.
    await graph.locator(`a[data-id="${source.id}"]`).focus();
    await page.keyboard.press('Enter');
    // Assert
    await expect.poll(() => page.locator(`article[data-image="${source.id}"][data-loaded="true"] h1`).textContent()).toBe('Image compute-base');
    const sourceSkip = page.locator('section[aria-labelledby="automations-title"] tbody tr');
    expect(await sourceSkip.locator('th, td').allTextContents()).toEqual(expect.arrayContaining(['compute-nightly', 'run', 'skipped', 'took this image as its source']));

    // Act: the images list, from the main navigation, filtered by name as one types.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Images' }).click();
    await expect.poll(() => page.locator('tr[data-image]').count()).toBe(4);
    const grandchildRow = page.locator(`tr[data-image="${grandchildId}"]`);
    expect(await grandchildRow.locator('td').nth(4).textContent()).toBe('compute-base_cfs_compute-motd');
    expect(await grandchildRow.locator('td').nth(5).textContent()).toBe('compute-issue');
    await page.getByLabel('Name contains').fill('compute-issue');
    // Assert
    await expect.poll(() => page.locator('tr[data-image]').count()).toBe(1);
    expect(await page.locator('.updated').textContent()).toMatch(/^1 of 4 images/);
    expect(pageErrors).toEqual([]);
  }, 240_000);

  it('shows why a session failed: the step, the layer and the reason, and the failed layer\'s log', async () => {
    // Arrange
    const broken = repos.with({ 'broken.yml': '- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - name: break on purpose\n      command: /bin/false\n' });
    await api('PUT', '/apis/cfs/v3/configurations/broken-config', { layers: [{ name: 'broken', clone_url: broken.url, commit: broken.commit, playbook: 'broken.yml' }] });
    // Act
    await api('POST', '/apis/cfs/v3/sessions', { name: 'breaks', configuration_name: 'broken-config', target: { definition: 'image', groups: [{ name: 'Compute', members: [donor.id] }] } });
    await page.goto(`${runtime.url}/${POLL}#/sessions/breaks`);
    const article = page.locator('article[data-session="breaks"]');
    // Assert
    await expect.poll(() => article.getAttribute('data-state'), { timeout: 120_000 }).toBe('failed');
    const failure = page.locator('section.failure');
    await expect.poll(() => failure.locator('p').first().textContent()).toBe(`Step: ansible · layer: broken · image: donor ${donor.id}`);
    const reason = (await api<{ status: { failure: { reason: string } } }>('GET', '/apis/cfs/v3/sessions/breaks')).body.status.failure.reason;
    expect(await failure.locator('p.reason').textContent()).toBe(reason);
    await expect.poll(() => page.locator('section.log-layer h3 .badge').textContent()).toBe('failed');
    expect(await page.locator('pre.log[data-layer="0"]').textContent()).toContain('break on purpose');
    expect(await page.locator('#artifacts-title + p').textContent()).toBe('No result image was registered.');
    // The failed layer recorded no change set: the page says so without asking for a report that cannot exist.
    await expect.poll(() => page.locator('ul.changes li').allTextContents()).toEqual(['Layer 0 broken: no changes recorded (the layer failed)']);
    await page.screenshot({ path: join(shots, 'dashboard-failed.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 150_000);

  it('is served by the bundled `cfs server` too, which finds the page from dist/', async () => {
    // Arrange
    const dataDir = dirs.make('cfs-dashboard-server-');
    const server = spawn(process.execPath, [BIN, 'server', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      server.stdout.on('data', (chunk: Buffer) => void (out += chunk.toString()));
      const url = await waitFor(async () => /listening on (http:\/\/\S+)/.exec(out)?.[1], 30_000, 'cfs server to listen');
      // Act
      const page = await fetch(`${url}/`);
      const lineage = await fetch(`${url}/dashboard/lineage.js`);
      // Assert
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<script type="module" src="dashboard/app.js">');
      expect(lineage.status).toBe(200);
      expect(await lineage.text()).toContain('export function lineageTree');
    } finally {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
  }, 60_000);

  it('serves the page at / with a same-origin policy, and unknown API paths still get problem+json', async () => {
    // Act
    const root = await fetch(`${runtime.url}/`);
    const script = await fetch(`${runtime.url}/dashboard/app.js`);
    const climbing = await fetch(`${runtime.url}/dashboard/..%2Fpackage.json`, { headers: bearer(runtime) });
    const posted = await fetch(`${runtime.url}/`, { method: 'POST' });
    const unknown = await fetch(`${runtime.url}/apis/cfs/v3/nothing-here`, { headers: bearer(runtime) });
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
