import { execFile, execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { BIN, ensureBuilt, spawnServer } from '../cli/cli-harness.ts';
import { bearer } from '../helpers/api-token.ts';
import { launchChromium, TempDirs } from '../helpers/browser.ts';
import { FakeWorkflow } from '../helpers/cfs-fakes.ts';

/**
 * Issue 17, items 1 to 3 in Debian's Chromium: the one-time sign-in link, a page on another
 * origin trying to act through the browser, and the dashboard over TLS with a certificate the test
 * makes (trusted by its SPKI, never by ignoring certificate errors).
 */

const dirs = new TempDirs();

/** A page on another origin (another port of 127.0.0.1: same site, other origin) that tries what issue 17 found. */
function attackerPage(target: string): string {
  const session = JSON.stringify({ name: 'from-a-page', configuration_name: 'attack', target: { definition: 'image', groups: [] } });
  return `<!doctype html><title>attacker</title>
<form id="f" method="POST" action="${target}/apis/cfs/v3/configurations/from-a-form" enctype="text/plain" target="sink"><input name='{"layers":[],"x":"' value='"}'></form>
<iframe name="sink"></iframe>
<script>
  window.results = [];
  fetch(${JSON.stringify(`${target}/apis/cfs/v3/sessions`)}, { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: ${JSON.stringify(session)} })
    .then(() => results.push('text/plain sent'), (e) => results.push('text/plain failed ' + e));
  document.getElementById('f').submit();
  results.push('form sent');
</script>`;
}

async function serve(html: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(html));
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('the dashboard and other origins in Chromium', () => {
  let runtime: EmbeddedRuntime;
  let context: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    runtime = await startEmbeddedRuntime({ dataDir: dirs.make('cfs-browser-security-'), port: 0, overrides: { workflow: new FakeWorkflow() } });
    context = await launchChromium(dirs.make('cfs-chromium-'), { width: 1280, height: 800 });
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);
  afterAll(async () => {
    await context?.close();
    await runtime?.close();
  });

  it('signs in through the one-time link: the code leaves for an HttpOnly cookie, the sessions show, and the link works once', async () => {
    // Arrange
    const link = `${runtime.url}/login?code=${runtime.login.mintCode()}`;
    const calls: { path: string; authorization?: string; status: number }[] = [];
    page.on('response', (r) => void (new URL(r.url()).pathname.startsWith('/dashboard/apis/') && calls.push({ path: new URL(r.url()).pathname, authorization: r.request().headers().authorization, status: r.status() })));
    // Act
    await page.goto(link);
    // Assert: on the page, at its address without the code, the sessions list and no token form.
    await expect.poll(() => page.locator('h1').textContent()).toBe('Sessions');
    expect(page.url()).toBe(`${runtime.url}/`);
    const cookies = await context.cookies(runtime.url);
    expect(cookies).toEqual([expect.objectContaining({ name: 'cfs_dashboard', httpOnly: true, sameSite: 'Strict', secure: false })]);
    expect(await page.evaluate('document.cookie')).toBe('');
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.every((c) => c.status === 200 && c.authorization === undefined)).toBe(true);
    // Act: the same link again, in a fresh context.
    const again = await fetch(link);
    // Assert
    expect(again.status).toBe(401);
  }, 60_000);

  it('lets a page on another origin create nothing: neither a text/plain POST nor a form POST acts', async () => {
    // Arrange: the browser holds the dashboard's cookie (from the test above), as a signed-in operator's would.
    const attacker = await serve(attackerPage(runtime.url));
    const seen: { path: string; status: number }[] = [];
    page.on('response', (r) => void (r.url().startsWith(runtime.url) && seen.push({ path: new URL(r.url()).pathname, status: r.status() })));
    try {
      // Act
      // Not waiting for `load`: that waits on the form's target frame, which a refused POST may never finish.
      await page.goto(`${attacker.url}/`, { waitUntil: 'domcontentloaded', timeout: 15_000 });
      await expect.poll(() => page.evaluate('window.results.length'), { timeout: 15_000 }).toBe(2);
      await expect.poll(() => seen.length, { timeout: 10_000 }).toBeGreaterThan(0);
      // Assert
      expect(seen.every((s) => s.status === 403 || s.status === 415)).toBe(true);
      expect(await runtime.ports.sessions.get('from-a-page')).toBeUndefined();
      expect(await runtime.ports.configurations.get('from-a-form')).toBeUndefined();
      const listed = (await (await fetch(`${runtime.url}/apis/cfs/v3/sessions`, { headers: bearer(runtime) })).json()) as { sessions: unknown[] };
      expect(listed.sessions).toEqual([]);
    } finally {
      // Chromium keeps its connection to the page's server alive: close it, or close() waits for it.
      attacker.server.closeAllConnections();
      await new Promise((done) => attacker.server.close(done));
    }
  }, 60_000);

  it('answers a rebinding Host name with a 4xx, whatever credential comes with it', async () => {
    // Act: what a page on attacker.example gets once its name resolves to 127.0.0.1.
    const status = await new Promise<number>((resolve) => {
      execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: attacker.example', '-H', `Authorization: ${bearer(runtime).Authorization}`, `${runtime.url}/apis/cfs/v3/sessions`], (_e, out) => resolve(Number(out)));
    });
    // Assert
    expect(status).toBe(421);
  });
});

/** This process's environment without NODE_EXTRA_CA_CERTS (set on some machines), so the CLI trusts only what a case gives it. */
function withoutSystemCaBundle(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** A CA and a server certificate for 127.0.0.1 signed by it, made with openssl. */
function makeCertificates(dir: string, name: string): { ca: string; cert: string; key: string } {
  const file = (f: string) => join(dir, `${name}-${f}`);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2', '-subj', `/CN=cfs test CA ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', file('key.pem'), '-out', file('csr.pem'), '-subj', '/CN=127.0.0.1');
  writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', file('csr.pem'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('cert.pem'), '-days', '2', '-extfile', file('ext.cnf'));
  return { ca: file('ca.pem'), cert: file('cert.pem'), key: file('key.pem') };
}

/** The base64 SHA-256 of a certificate's public key (SPKI), as Chromium's --ignore-certificate-errors-spki-list takes it. */
function spkiHash(certFile: string): string {
  const der = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

describe('cfs server over TLS', () => {
  let dir: string;
  let first: ReturnType<typeof makeCertificates>;
  let runtime: EmbeddedRuntime;
  beforeAll(async () => {
    ensureBuilt();
    dir = dirs.make('cfs-tls-');
    first = makeCertificates(dir, 'one');
    runtime = await startEmbeddedRuntime({ dataDir: join(dir, 'data'), port: 0, tls: { certFile: first.cert, keyFile: first.key }, overrides: { workflow: new FakeWorkflow() } });
  }, 60_000);
  afterAll(async () => {
    await runtime?.close();
    dirs.removeAll();
  });

  const curl = (...args: string[]) =>
    new Promise<{ code: number; out: string }>((resolve) => execFile('curl', ['-s', ...args], (error, out) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out })));
  const cfs = (env: Record<string, string>, ...argv: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) =>
      execFile(process.execPath, [BIN, ...argv], { env: { ...withoutSystemCaBundle(), CFS_API_URL: runtime.url, CFS_DATA_DIR: runtime.dataDir, ...env } }, (error, out, err) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out, err })),
    );

  it('serves https with its signed URLs on https, to curl and the CLI trusting the test CA, and to nobody else', async () => {
    // Act
    const trusted = await curl('-o', '/dev/null', '-w', '%{http_code}', '--cacert', first.ca, '-H', `Authorization: ${bearer(runtime).Authorization}`, `${runtime.url}/apis/cfs/v3/sessions`);
    const untrusted = await curl('-o', '/dev/null', `${runtime.url}/apis/cfs/v3/sessions`);
    const clear = await curl('-o', '/dev/null', '-w', '%{http_code}', runtime.url.replace('https:', 'http:') + '/apis/cfs/v3/sessions');
    const cli = await cfs({ CFS_CA_BUNDLE: first.ca }, 'images', 'build-sample', '--name', 'over-tls', '--format', 'json');
    const cliUntrusted = await cfs({}, 'sessions', 'list');
    const upload = await runtime.ports.artifacts.uploadUrl('boot-images/x/rootfs', 60);
    // Assert
    expect(runtime.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(trusted).toEqual({ code: 0, out: '200' });
    expect(untrusted.code).toBe(60);
    expect(clear.out).not.toBe('200');
    // Its progress lines go to stderr; no error or warning may.
    expect(cli.err).not.toMatch(/error|warning/i);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.out).name).toBe('over-tls');
    expect(cliUntrusted.code).toBe(1);
    expect(cliUntrusted.err).toMatch(/^Error: cannot trust the certificate of https:\/\/127\.0\.0\.1:\d+ \(\w+\); give its CA certificate in CFS_CA_BUNDLE/);
    expect(upload.startsWith(`${runtime.url}/artifacts/`)).toBe(true);
  }, 180_000);

  it('shows the dashboard in Chromium trusting the certificate by its SPKI, with a Secure cookie', async () => {
    // Arrange
    const context = await launchChromium(dirs.make('cfs-chromium-tls-'), { width: 1280, height: 800 }, [`--ignore-certificate-errors-spki-list=${spkiHash(first.cert)}`]);
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      // Act
      await page.goto(`${runtime.url}/login?code=${runtime.login.mintCode()}`);
      // Assert
      await expect.poll(() => page.locator('h1').textContent()).toBe('Sessions');
      expect(page.url()).toBe(`${runtime.url}/`);
      expect(await context.cookies(runtime.url)).toEqual([expect.objectContaining({ name: 'cfs_dashboard', httpOnly: true, secure: true })]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('reloads its certificate and key as SIGHUP has `cfs server` do (setSecureContext): new connections get the new one', async () => {
    // Arrange
    const second = makeCertificates(dir, 'two');
    writeFileSync(first.cert, readFileSync(second.cert));
    writeFileSync(first.key, readFileSync(second.key));
    // Act
    runtime.reloadTls();
    const oldCa = await curl('-o', '/dev/null', '--cacert', first.ca, `${runtime.url}/apis/cfs/healthz`);
    const newCa = await curl('-o', '/dev/null', '-w', '%{http_code}', '--cacert', second.ca, `${runtime.url}/apis/cfs/v3/sessions`, '-H', `Authorization: ${bearer(runtime).Authorization}`);
    // Assert
    expect(oldCa.code).toBe(60);
    expect(newCa).toEqual({ code: 0, out: '200' });
  });

  it('reloads them in a running `cfs server` on SIGHUP, and keeps serving the old ones when the new files do not load', async () => {
    // Arrange: a real server process whose certificate files are then replaced.
    const one = makeCertificates(dir, 'hup-one');
    const two = makeCertificates(dir, 'hup-two');
    const [cert, key] = [join(dir, 'hup-cert.pem'), join(dir, 'hup-key.pem')];
    writeFileSync(cert, readFileSync(one.cert));
    writeFileSync(key, readFileSync(one.key));
    const server = await spawnServer(dirs.make('cfs-hup-'), ['--tls-cert', cert, '--tls-key', key]);
    const status = (ca: string) => curl('-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca, `${server.url}/apis/cfs/v3/sessions`, '-H', `Authorization: ${bearer({ dataDir: server.env.CFS_DATA_DIR! }).Authorization}`);
    const hangUp = async (said: RegExp) => {
      server.child.kill('SIGHUP');
      await expect.poll(() => server.output(), { timeout: 10_000 }).toMatch(said);
    };
    try {
      // Act
      const before = await status(one.ca);
      writeFileSync(cert, 'not a certificate\n');
      await hangUp(/SIGHUP, TLS certificate and key not reloaded \(the old ones stay\)/);
      const kept = await status(one.ca);
      writeFileSync(cert, readFileSync(two.cert));
      writeFileSync(key, readFileSync(two.key));
      await hangUp(/SIGHUP, TLS certificate and key reloaded/);
      const oldCa = await status(one.ca);
      const newCa = await status(two.ca);
      // Assert
      expect(before).toEqual({ code: 0, out: '200' });
      expect(kept).toEqual({ code: 0, out: '200' });
      expect(oldCa.code).toBe(60);
      expect(newCa).toEqual({ code: 0, out: '200' });
      expect(server.child.exitCode).toBeNull();
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }, 60_000);
});
