import fc from 'fast-check';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../functions/cli/main.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { waitFor } from '../helpers/wait.ts';
import { recordCase } from './results.ts';

// Security (issue 11, item 4): where the embedded server listens, the bearer token, and git
// credentials kept out of everything a user or a log reader can see.

const RUNS = Number(process.env.CFS_RELIABILITY_RUNS ?? 300);
const TOKEN = 'reliability-token-0123456789';

async function cli(env: Record<string, string>, ...argv: string[]) {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`), env };
  const code = await runCli(argv, io);
  return { code, out, err };
}

describe('where the embedded server listens, and its token', () => {
  let temp: string;
  beforeAll(() => void (temp = mkdtempSync(join(tmpdir(), 'cfs-security-'))));
  afterAll(() => rmSync(temp, { recursive: true, force: true }));

  it('refuses to listen on 0.0.0.0 or another address without CFS_API_TOKEN, in the runtime and in cfs server', async () => {
    // Arrange
    const hosts = ['0.0.0.0', '::', '192.0.2.1'];
    // Act
    const runtimeErrors = await Promise.all(hosts.map((host) => startEmbeddedRuntime({ dataDir: join(temp, `never-${host}`), port: 0, host, overrides: { workflow: new FakeWorkflow() } }).then(() => undefined, (e: Error) => e.message)));
    const commands = await Promise.all(hosts.map((host) => cli({}, 'server', '--host', host, '--port', '0', '--data-dir', join(temp, `cli-${host}`))));
    // Assert
    for (const message of runtimeErrors) expect(message).toMatch(/without an API token \(CFS_API_TOKEN\)/);
    for (const result of commands) {
      expect(result.code).not.toBe(0);
      expect(result.err.trim()).toMatch(/^Error: refusing to listen on .* without an API token: set CFS_API_TOKEN/);
    }
    for (const host of hosts) expect(existsSync(join(temp, `cli-${host}`))).toBe(false);
    recordCase({ id: 'security-bind', area: 'security', case: 'listen on 0.0.0.0, :: or another address without CFS_API_TOKEN (runtime and `cfs server --host`)', tried: hosts.length * 2, result: 'every start refused with a one-line reason; no data directory created', passed: true });
  });

  it('answers 401 problem+json without or with a wrong bearer token, and serves the right one (also through the CLI)', async () => {
    // Arrange: on 0.0.0.0 (allowed with a token), reached over loopback only.
    const runtime = await startEmbeddedRuntime({ dataDir: join(temp, 'token'), port: 0, host: '0.0.0.0', apiToken: TOKEN, overrides: { workflow: new FakeWorkflow() } });
    const url = runtime.url.replace('0.0.0.0', '127.0.0.1');
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
      const withoutToken = await cli({ CFS_API_URL: url }, 'sessions', 'list', '--format', 'json');
      // Assert
      expect(none.status).toBe(401);
      expect(noneBody).toMatchObject({ status: 401, title: 'Unauthorized' });
      expect(right.status).toBe(200);
      expect(withToken.code).toBe(0);
      expect(JSON.parse(withToken.out)).toMatchObject({ sessions: [] });
      expect(withoutToken.code).not.toBe(0);
      expect(withoutToken.err.trim()).toMatch(/^Error: Unauthorized: an Authorization: Bearer token is required$/);
      recordCase({ id: 'security-token', area: 'security', case: 'requests without a token, with wrong tokens (generated, near misses, other schemes), with the right one; the CLI with and without CFS_API_TOKEN', tried: wrong + 4, result: `401 problem+json for none and all ${wrong} wrong ones; 200 and CLI exit 0 with the token; CLI without it exits 2 with one line`, passed: true });
    } finally {
      await runtime.close();
    }
  });

  it('serves loopback without a token by default', async () => {
    // Arrange
    const runtime = await startEmbeddedRuntime({ dataDir: join(temp, 'default'), port: 0, overrides: { workflow: new FakeWorkflow() } });
    try {
      // Act
      const response = await fetch(`${runtime.url}/apis/cfs/v3/sessions`);
      // Assert
      expect(runtime.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(response.status).toBe(200);
      recordCase({ id: 'security-loopback', area: 'security', case: 'default server: listens on 127.0.0.1, no token needed', tried: 1, result: 'bound to 127.0.0.1, 200 without a token', passed: true });
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
    const env = { CFS_API_URL: runtime.url };
    const image = JSON.parse((await cli(env, 'images', 'build-sample', '--name', 'creds-base', '--format', 'json')).out) as { id: string };
    const cloneUrl = `http://cfsuser:${SECRET}@127.0.0.1:9/private.git`;
    const put = await fetch(`${runtime.url}/apis/cfs/v3/configurations/creds`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ layers: [{ name: 'private', clone_url: cloneUrl, commit: 'b'.repeat(40), playbook: 'site.yml' }] }) });
    const branchPut = await fetch(`${runtime.url}/apis/cfs/v3/configurations/creds-branch`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ layers: [{ name: 'private', clone_url: cloneUrl, branch: 'main', playbook: 'site.yml' }] }) });
    const branchProblem = await branchPut.text();

    // Act
    await fetch(`${runtime.url}/apis/cfs/v3/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'creds', configuration_name: 'creds', target: { definition: 'image', groups: [{ name: 'Compute', members: [image.id] }] } }) });
    const session = await waitFor(async () => {
      const s = (await (await fetch(`${runtime.url}/apis/cfs/v3/sessions/creds`)).json()) as { status: { session: { status: string } } };
      return s.status.session.status === 'complete' ? s : undefined;
    }, 120_000, 'the session to complete');
    const sessionText = JSON.stringify(session);
    const logs = await (await fetch(`${runtime.url}/apis/cfs/v3/sessions/creds/logs`)).text();
    const described = await cli(env, 'sessions', 'describe', 'creds', '--format', 'human');

    // Assert
    expect(put.status).toBe(200);
    expect(branchPut.status).toBe(400);
    expect(branchProblem).not.toContain(SECRET);
    expect(sessionText).toContain('"succeeded":"false"');
    expect(sessionText).toContain('http://127.0.0.1:9/private.git');
    expect((session as unknown as { status: { failure?: { reason?: string } } }).status.failure?.reason).toBeTruthy();
    expect(sessionText).not.toContain(SECRET);
    expect(logs).not.toContain(SECRET);
    expect(described.out + described.err).not.toContain(SECRET);
    expect(published.length).toBeGreaterThan(0);
    expect(published.filter((e) => e.includes(SECRET))).toEqual([]);
    expect(filesWithSecret(join(parent, 'data'))).toEqual([]);
    recordCase({ id: 'security-credentials', area: 'security', case: 'clone URL http://user:password@... : a session whose layer cannot be fetched, and a branch that cannot be resolved', tried: 1, result: `password absent from status (layers, failure reason), logs, CLI describe, ${published.length} events, the branch problem detail and every file under the data directory but the database`, passed: true });
  });
});
