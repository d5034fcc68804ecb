import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPublicRead } from '../../functions/api/auth.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../functions/cli/main.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { BIN } from '../cli/cli-harness.ts';
import { bearer } from '../helpers/api-token.ts';
import { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { cfsAsNobody, curlAsNobody } from '../helpers/other-user.ts';
import { waitFor } from '../helpers/wait.ts';
import { recordCase } from './results.ts';

// Security (issue 11, item 4; issue 17, items 1 to 3): where the embedded server listens, who may
// use it (its own user's token, other users, other web origins, TLS), and git credentials kept out
// of everything a user or a log reader can see.

const RUNS = Number(process.env.CFS_RELIABILITY_RUNS ?? 300);
const TOKEN = 'reliability-token-0123456789';

async function cli(env: Record<string, string>, ...argv: string[]) {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`), env };
  const code = await runCli(argv, io);
  return { code, out, err };
}

describe('where the embedded server listens, and who may use it', () => {
  let temp: string;
  beforeAll(() => void (temp = mkdtempSync(join(tmpdir(), 'cfs-security-'))));
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  it('refuses plain HTTP off loopback, a public URL naming 0.0.0.0 and a wildcard bind without one, in the runtime and in cfs server', async () => {
    // Arrange
    const hosts = ['0.0.0.0', '::', '192.0.2.1'];
    const start = (options: Partial<Parameters<typeof startEmbeddedRuntime>[0]>, name: string) =>
      startEmbeddedRuntime({ dataDir: join(temp, `never-${name}`), port: 0, apiToken: TOKEN, overrides: { workflow: new FakeWorkflow() }, ...options }).then(() => undefined, (e: Error) => e.message);
    // Act
    const clear = await Promise.all(hosts.map((host) => start({ host, publicUrl: 'https://cfs.example.org' }, host)));
    const commands = await Promise.all(hosts.map((host) => cli({ CFS_API_TOKEN: TOKEN }, 'server', '--host', host, '--port', '0', '--public-url', 'https://cfs.example.org', '--data-dir', join(temp, `cli-${host}`))));
    const wildcardUrl = await Promise.all(['http://0.0.0.0:8787', 'https://[::]:8787'].map((publicUrl, i) => start({ publicUrl }, `url-${i}`)));
    const wildcardBind = await start({ host: '0.0.0.0', insecureHttp: true }, 'bind');
    // Assert
    for (const message of clear) expect(message).toMatch(/^refusing to listen on .* over plain HTTP: give --tls-cert and --tls-key or --tls-self-signed, or --insecure-http/);
    for (const result of commands) {
      expect(result.code).toBe(1);
      expect(result.err.trim()).toMatch(/^Error: refusing to listen on .* over plain HTTP/);
    }
    expect(wildcardUrl).toEqual(['--public-url cannot name 0.0.0.0: no client can reach the wildcard address; name this host', '--public-url cannot name [::]: no client can reach the wildcard address; name this host']);
    expect(wildcardBind).toMatch(/needs --public-url/);
    for (const name of [...hosts.map((h) => `cli-${h}`), ...hosts.map((h) => `never-${h}`)]) expect(existsSync(join(temp, name))).toBe(false);
    recordCase({ id: 'security-bind', area: 'security', case: 'listen on 0.0.0.0, :: or 192.0.2.1 over plain HTTP (with a token: the runtime and `cfs server --host`); --public-url http://0.0.0.0 and https://[::]; 0.0.0.0 with --insecure-http but no --public-url', tried: hosts.length * 2 + 3, result: 'every start refused with a one-line reason naming --tls-cert/--tls-self-signed/--insecure-http or --public-url; no data directory created', passed: true });
  });

  it('answers 401 problem+json without or with a wrong bearer token, and serves the right one (also through the CLI)', async () => {
    // Arrange: on 0.0.0.0 behind a (pretend) TLS-terminating proxy, reached over loopback only.
    const runtime = await startEmbeddedRuntime({ dataDir: join(temp, 'token'), port: 0, host: '0.0.0.0', insecureHttp: true, publicUrl: 'https://cfs.example.org', apiToken: TOKEN, overrides: { workflow: new FakeWorkflow() } });
    const url = runtime.url;
    const nowhere = join(temp, 'no-data-dir');
    try {
      // Act
      const none = await fetch(`${url}/apis/cfs/v3/sessions`);
      const noneBody = (await none.json()) as { status: number; title: string };
      let wrong = 0;
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.string({ maxLength: 64 }), fc.constant(TOKEN.slice(0, -1)), fc.constant(`${TOKEN}x`), fc.constant(TOKEN.toUpperCase())), fc.constantFrom('Bearer ', 'bearer ', 'Basic ', ''), async (token, scheme) => {
          fc.pre(!(token.trim() === TOKEN && /^bearer $/i.test(scheme)));
          const response = await fetch(`${url}/apis/cfs/v3/configurations`, { headers: { authorization: `${scheme}${token}`.replace(/[^\t\x20-\x7e]/g, '?') } });
          wrong += 1;
          expect(response.status).toBe(401);
          expect(response.headers.get('content-type')).toContain('application/problem+json');
          await response.text();
        }),
        { numRuns: RUNS },
      );
      const right = await fetch(`${url}/apis/cfs/v3/sessions`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const withToken = await cli({ CFS_API_URL: url, CFS_API_TOKEN: TOKEN }, 'sessions', 'list', '--format', 'json');
      const withoutToken = await cli({ CFS_API_URL: url, CFS_DATA_DIR: nowhere }, 'sessions', 'list', '--format', 'json');
      // Assert
      expect(none.status).toBe(401);
      expect(noneBody).toMatchObject({ status: 401, title: 'Unauthorized' });
      expect(right.status).toBe(200);
      expect(withToken.code).toBe(0);
      expect(JSON.parse(withToken.out)).toMatchObject({ sessions: [] });
      expect(withoutToken.code).toBe(2);
      expect(withoutToken.err.trim()).toBe(`Error: Unauthorized: an Authorization: Bearer token is required (\`cfs auth token\` prints it on the server's machine) (no token sent: CFS_API_TOKEN is not set and ${join(nowhere, 'api-token')} cannot be read (ENOENT))`);
      recordCase({ id: 'security-token', area: 'security', case: 'server on 0.0.0.0 with CFS_API_TOKEN (--insecure-http): requests without a token, with wrong tokens (generated, near misses, other schemes), with the right one; the CLI with CFS_API_TOKEN and with neither it nor a readable token file', tried: wrong + 4, result: `401 problem+json for none and all ${wrong} wrong ones; 200 and CLI exit 0 with the token; CLI without one exits 2 with one line naming where it looked`, passed: true });
    } finally {
      await runtime.close();
    }
  });

  it('requires its own token on loopback too: made at first start in the data directory (0600), found there by the CLI', async () => {
    // Arrange
    const runtime = await startEmbeddedRuntime({ dataDir: join(temp, 'default'), port: 0, overrides: { workflow: new FakeWorkflow() } });
    try {
      // Act
      const none = await fetch(`${runtime.url}/apis/cfs/v3/sessions`);
      const health = await fetch(`${runtime.url}/apis/cfs/healthz`);
      const withFileToken = await fetch(`${runtime.url}/apis/cfs/v3/sessions`, { headers: bearer(runtime) });
      const viaCli = await cli({ CFS_API_URL: runtime.url, CFS_DATA_DIR: runtime.dataDir }, 'sessions', 'list', '--format', 'json');
      // Assert
      expect(runtime.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(none.status).toBe(401);
      expect(health.status).not.toBe(401);
      expect(statSync(join(runtime.dataDir, 'api-token')).mode & 0o777).toBe(0o600);
      expect(withFileToken.status).toBe(200);
      expect(viaCli.code).toBe(0);
      recordCase({ id: 'security-loopback', area: 'security', case: 'default server on 127.0.0.1: a request without a token; the health route; the token from <data dir>/api-token by curl-style fetch and by the CLI pointed at the data dir', tried: 4, result: `401 without a token; healthz needs none (${health.status}); api-token is mode 0600; 200 and CLI exit 0 with it`, passed: true });
    } finally {
      await runtime.close();
    }
  });

  it('gives another local user (nobody) 401 on every documented route, with curl and with the cfs CLI, and starts nothing', async () => {
    // Arrange: the data directory open to others, so only the token file's own mode protects it.
    const workflow = new FakeWorkflow();
    const runtime = await startEmbeddedRuntime({ dataDir: join(temp, 'other-user'), port: 0, overrides: { workflow } });
    chmodSync(temp, 0o755);
    chmodSync(runtime.dataDir, 0o755);
    try {
      // Act
      const attempts = await curlAsNobody(runtime, join(temp, 'scratch'));
      const cliToken = await cfsAsNobody(runtime, BIN, 'auth', 'token');
      const cliCreate = await cfsAsNobody(runtime, BIN, 'sessions', 'create', '--name', 'attack', '--configuration-name', 'attack', '--target-group', 'Compute', '3fa85f64-5717-4562-b3fc-2c963f66afa6');
      // Assert
      // The health and version routes answer anyone (they reveal nothing); every other route is a 401.
      const publicReads = attempts.filter((a) => isPublicRead(a.method, a.path));
      const api = attempts.filter((a) => !a.path.startsWith('/artifacts/') && !isPublicRead(a.method, a.path));
      const artifact = attempts.filter((a) => a.path.startsWith('/artifacts/'));
      expect(api.filter((a) => a.status !== 401)).toEqual([]);
      expect(publicReads.length).toBe(9);
      expect(publicReads.every((a) => a.status === 200)).toBe(true);
      expect(artifact.every((a) => a.status === 403 || a.status === 415)).toBe(true);
      expect(cliToken.err).toContain('(EACCES)');
      expect(cliCreate.code).toBe(2);
      expect(await runtime.ports.sessions.get('attack')).toBeUndefined();
      expect(await runtime.ports.configurations.get('attack')).toBeUndefined();
      expect(workflow.started).toEqual([]);
      recordCase({ id: 'security-other-user', area: 'security', case: 'as nobody (setpriv --reuid=65534 --regid=65534 --clear-groups): curl on every operation of the OpenAPI document (write routes with a JSON body creating a session or configuration), `cfs auth token` and `cfs sessions create` with CFS_DATA_DIR pointing at the server', tried: attempts.length + 2, result: `${api.length} API operations all 401 (and the ${publicReads.length} health and version reads 200, public by design); ${artifact.length} artifact operations 403/415 (no signature); the CLI cannot read api-token (EACCES) and exits 2 on 401; no session or configuration stored, no workflow started`, passed: true });
    } finally {
      await runtime.close();
    }
  });

  it('refuses other Host names, other origins and form-like bodies before anything acts', async () => {
    // Arrange
    const runtime = await startEmbeddedRuntime({ dataDir: join(temp, 'origins'), port: 0, overrides: { workflow: new FakeWorkflow() } });
    const { port } = new URL(runtime.url);
    const auth = bearer(runtime).Authorization;
    const send = (headers: string[], method = 'GET', body?: string) =>
      new Promise<number>((resolve) => execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', method, '-H', `Authorization: ${auth}`, ...headers.flatMap((h) => ['-H', h]), ...(body === undefined ? [] : ['--data-raw', body]), `${runtime.url}/apis/cfs/v3/configurations/from-elsewhere`], (_e, out) => resolve(Number(out))));
    const config = JSON.stringify({ layers: [] });
    try {
      // Act
      let hosts = 0;
      await fc.assert(
        fc.asyncProperty(fc.domain(), fc.constantFrom('', `:${port}`, ':80'), async (name, suffix) => {
          fc.pre(!['localhost', '127.0.0.1'].includes(name));
          hosts += 1;
          expect(await send([`Host: ${name}${suffix}`])).toBe(421);
        }),
        { numRuns: Math.min(RUNS, 100) },
      );
      const origins = await Promise.all(['http://attacker.example', 'null', `http://127.0.0.1:${Number(port) + 1}`, `http://localhost.attacker.example:${port}`].map((o) => send([`Origin: ${o}`, 'Content-Type: application/json'], 'PUT', config)));
      const sites = await Promise.all([send(['Sec-Fetch-Site: cross-site']), send(['Sec-Fetch-Site: same-site', 'Content-Type: application/json'], 'PUT', config)]);
      const types = await Promise.all(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'].map((t) => send([`Content-Type: ${t}`], 'PUT', config)));
      const own = await send([`Origin: ${runtime.url}`, 'Sec-Fetch-Site: same-origin', 'Content-Type: application/json'], 'PUT', config);
      // Assert
      expect(origins).toEqual([403, 403, 403, 403]);
      expect(sites).toEqual([403, 403]);
      expect(types).toEqual([415, 415, 415]);
      expect(own).toBe(200);
      recordCase({ id: 'security-origin', area: 'security', case: 'with the right token: generated Host names (DNS rebinding) with no, the same or another port; foreign, null, other-port and look-alike Origins; Sec-Fetch-Site cross-site and same-site writes; text/plain, form and multipart bodies; then the own origin', tried: hosts + 4 + 2 + 3 + 1, result: `421 for all ${hosts} Host names; 403 for every foreign origin and cross-site/same-site write; 415 for every form-like body; 200 from the own origin`, passed: true });
    } finally {
      await runtime.close();
    }
  });

  it('serves TLS with a self-signed certificate kept in the data directory, trusted only by clients given it', async () => {
    // Arrange
    const dataDir = join(temp, 'tls');
    const runtime = await startEmbeddedRuntime({ dataDir, port: 0, tlsSelfSigned: true, overrides: { workflow: new FakeWorkflow() } });
    const curl = (...args: string[]) => new Promise<{ code: number; out: string }>((resolve) => execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args], (error, out) => resolve({ code: error ? Number((error as { code?: number }).code) : 0, out })));
    try {
      const cert = join(dataDir, 'tls', 'cert.pem');
      // Act
      const trusted = await curl('--cacert', cert, '-H', `Authorization: ${bearer(runtime).Authorization}`, `${runtime.url}/apis/cfs/v3/sessions`);
      const untrusted = await curl(`${runtime.url}/apis/cfs/v3/sessions`);
      const clear = await curl(`${runtime.url.replace('https:', 'http:')}/apis/cfs/v3/sessions`);
      const cliTrusting = await new Promise<number>((resolve) => execFile(process.execPath, [BIN, 'sessions', 'list'], { env: { ...process.env, CFS_API_URL: runtime.url, CFS_DATA_DIR: dataDir, CFS_CA_BUNDLE: cert } }, (e) => resolve(e ? Number((e as { code?: number }).code) : 0)));
      const signed = await runtime.ports.artifacts.uploadUrl('boot-images/x/rootfs', 60);
      // Assert
      expect(runtime.url).toMatch(/^https:/);
      expect(trusted).toEqual({ code: 0, out: '200' });
      expect(untrusted.code).toBe(60);
      expect(clear.out).not.toBe('200');
      expect(cliTrusting).toBe(0);
      expect(signed.startsWith(`${runtime.url}/artifacts/`)).toBe(true);
      recordCase({ id: 'security-tls', area: 'security', case: '--tls-self-signed: curl with --cacert <data dir>/tls/cert.pem and the token, curl without it, plain HTTP to the TLS port, the CLI with CFS_CA_BUNDLE, a signed upload URL', tried: 5, result: `200 trusted; curl exit ${untrusted.code} (certificate not trusted) untrusted; plain HTTP answered ${clear.out || 'nothing'}; CLI exit 0; signed URLs on https`, passed: true });
    } finally {
      await runtime.close();
    }
  });
});

describe('git credentials in a clone URL', () => {
  const SECRET = 'hunter2-reliability';
  let parent: string;
  let runtime: EmbeddedRuntime;
  const published: string[] = [];

  beforeAll(async () => {
    parent = mkdtempSync(join(tmpdir(), 'cfs-creds-'));
    runtime = await startEmbeddedRuntime({ dataDir: join(parent, 'data'), port: 0, cloneUrlSchemes: ['https', 'http', 'ssh', 'file'] });
    const publish = runtime.bus.publish.bind(runtime.bus);
    runtime.bus.publish = async (event) => {
      published.push(JSON.stringify(event));
      return publish(event);
    };
  });
  afterAll(async () => {
    await runtime.close();
    rmSync(parent, { recursive: true, force: true });
  });

  /** Every file under the data directory but the database, searched for the secret. */
  function filesWithSecret(dir: string): string[] {
    const hits: string[] = [];
    const walk = (d: string) => {
      for (const entry of readdirSync(d)) {
        const path = join(d, entry);
        if (path === join(parent, 'data', 'db')) continue;
        const stat = statSync(path);
        if (stat.isDirectory()) walk(path);
        else if (stat.size < 50_000_000 && readFileSync(path).includes(SECRET)) hits.push(path);
      }
    };
    walk(dir);
    return hits;
  }

  it('never shows them in the session status, its failure reason, its logs, the events, the problem details or the files', async () => {
    // Arrange: a real session whose one layer cannot be fetched from an http URL with user:password.
    const env = { CFS_API_URL: runtime.url, CFS_DATA_DIR: runtime.dataDir };
    const image = JSON.parse((await cli(env, 'images', 'build-sample', '--name', 'creds-base', '--format', 'json')).out) as { id: string };
    const cloneUrl = `http://cfsuser:${SECRET}@127.0.0.1:9/private.git`;
    const put = await fetch(`${runtime.url}/apis/cfs/v3/configurations/creds`, { method: 'PUT', headers: { ...bearer(runtime), 'content-type': 'application/json' }, body: JSON.stringify({ layers: [{ name: 'private', clone_url: cloneUrl, commit: 'b'.repeat(40), playbook: 'site.yml' }] }) });
    const branchPut = await fetch(`${runtime.url}/apis/cfs/v3/configurations/creds-branch`, { method: 'PUT', headers: { ...bearer(runtime), 'content-type': 'application/json' }, body: JSON.stringify({ layers: [{ name: 'private', clone_url: cloneUrl, branch: 'main', playbook: 'site.yml' }] }) });
    const branchProblem = await branchPut.text();
    // A scheme outside the allow-list is refused; its problem must not quote the password either.
    const refusedPut = await fetch(`${runtime.url}/apis/cfs/v3/configurations/creds-refused`, { method: 'PUT', headers: { ...bearer(runtime), 'content-type': 'application/json' }, body: JSON.stringify({ layers: [{ name: 'private', clone_url: `ftp://cfsuser:${SECRET}@127.0.0.1:9/private.git`, commit: 'b'.repeat(40), playbook: 'site.yml' }] }) });
    const refusedProblem = await refusedPut.text();
    const configurations = await (await fetch(`${runtime.url}/apis/cfs/v3/configurations`, { headers: bearer(runtime) })).text();
    const configurationsV2 = await (await fetch(`${runtime.url}/apis/cfs/v2/configurations/creds`, { headers: bearer(runtime) })).text();
    const describedConfiguration = await cli(env, 'configurations', 'describe', 'creds', '--format', 'json');

    // Act
    await fetch(`${runtime.url}/apis/cfs/v3/sessions`, { method: 'POST', headers: { ...bearer(runtime), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'creds', configuration_name: 'creds', target: { definition: 'image', groups: [{ name: 'Compute', members: [image.id] }] } }) });
    const session = await waitFor(async () => {
      const s = (await (await fetch(`${runtime.url}/apis/cfs/v3/sessions/creds`, { headers: bearer(runtime) })).json()) as { status: { session: { status: string } } };
      return s.status.session.status === 'complete' ? s : undefined;
    }, 120_000, 'the session to complete');
    const sessionText = JSON.stringify(session);
    const logs = await (await fetch(`${runtime.url}/apis/cfs/v3/sessions/creds/logs`, { headers: bearer(runtime) })).text();
    const described = await cli(env, 'sessions', 'describe', 'creds', '--format', 'human');

    // Assert
    expect(put.status).toBe(200);
    expect(branchPut.status).toBe(400);
    expect(branchProblem).not.toContain(SECRET);
    expect(refusedPut.status).toBe(400);
    expect(JSON.parse(refusedProblem).field).toBe('layers[0].clone_url');
    expect(refusedProblem).not.toContain(SECRET);
    expect(configurations).toContain('http://cfsuser:***@127.0.0.1:9/private.git');
    expect(configurations + configurationsV2).not.toContain(SECRET);
    expect(describedConfiguration.code).toBe(0);
    expect(describedConfiguration.out + describedConfiguration.err).not.toContain(SECRET);
    expect(sessionText).toContain('"succeeded":"false"');
    expect(sessionText).toContain('http://127.0.0.1:9/private.git');
    expect((session as unknown as { status: { failure?: { reason?: string } } }).status.failure?.reason).toBeTruthy();
    expect(sessionText).not.toContain(SECRET);
    expect(logs).not.toContain(SECRET);
    expect(described.out + described.err).not.toContain(SECRET);
    expect(published.length).toBeGreaterThan(0);
    expect(published.filter((e) => e.includes(SECRET))).toEqual([]);
    // Cleanup, the workflow's last step, takes the password out of the run document kept as the
    // session's record; it runs just after the session is recorded complete, so give it its moment.
    const leftAtRest = await waitFor(async () => {
      const files = filesWithSecret(join(parent, 'data'));
      return files.length === 0 ? files : undefined;
    }, 30_000, 'no file but the database to hold the password').catch(() => filesWithSecret(join(parent, 'data')));
    expect(leftAtRest).toEqual([]);
    recordCase({ id: 'security-credentials', area: 'security', case: 'clone URL http://user:password@... : a session whose layer cannot be fetched, a branch that cannot be resolved, the same URL with a refused scheme (ftp), and the configuration read back (v2, v3, CLI)', tried: 1, result: `password absent from status (layers, failure reason), logs, CLI describe, ${published.length} events, the branch and refused-scheme problem details, configuration answers (masked as ***) and every file under the data directory but the database`, passed: true });
  });
});
