import { execFile } from 'node:child_process';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../functions/cli/main.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import { loadOrCreateApiToken } from '../../functions/server/api-token.ts';
import { BIN, ensureBuilt, tempDataDir } from './cli-harness.ts';

async function cli(env: Record<string, string>, ...argv: string[]) {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`), env };
  return { code: await runCli(argv, io), out, err };
}

/** A server that only records the Authorization header of what it was sent. */
async function recordingServer(status = 200): Promise<{ url: string; seen: (string | undefined)[]; close(): Promise<void> }> {
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    seen.push((req.headers as IncomingHttpHeaders).authorization);
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(status === 200 ? '[]' : JSON.stringify({ title: 'Unauthorized', detail: 'an Authorization: Bearer token is required' }));
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((done) => server.close(() => done())) };
}

describe('cfs server: where it may listen', () => {
  const temp = tempDataDir();
  afterAll(() => temp.dispose());

  it('refuses to listen on 0.0.0.0 over plain HTTP, before touching the data directory', async () => {
    // Act
    const result = await cli({ CFS_API_TOKEN: 'set-but-not-enough' }, 'server', '--host', '0.0.0.0', '--port', '0', '--public-url', 'http://cfs.example.org:8787', '--data-dir', join(temp.dir, 'd'));
    // Assert
    expect(result.code).toBe(1);
    expect(result.err.trim()).toBe('Error: refusing to listen on 0.0.0.0 over plain HTTP: give --tls-cert and --tls-key or --tls-self-signed, or --insecure-http when a TLS-terminating proxy is in front');
    expect(existsSync(join(temp.dir, 'd'))).toBe(false);
  });

  it('refuses a public URL naming 0.0.0.0, a wildcard bind without a public URL, an http public URL over TLS, and half a TLS pair', async () => {
    // Arrange
    const dir = join(temp.dir, 'never');
    // Act
    const wildcardUrl = await cli({}, 'server', '--port', '0', '--data-dir', dir, '--public-url', 'http://0.0.0.0:8787');
    const wildcardBind = await cli({}, 'server', '--port', '0', '--data-dir', dir, '--host', '0.0.0.0', '--insecure-http');
    const clearOverTls = await cli({}, 'server', '--port', '0', '--data-dir', dir, '--tls-self-signed', '--public-url', 'http://cfs.example.org:8787');
    const withPath = await cli({}, 'server', '--port', '0', '--data-dir', dir, '--public-url', 'https://cfs.example.org/x');
    const halfPair = await cli({}, 'server', '--port', '0', '--data-dir', dir, '--tls-cert', '/etc/hostname');
    // Assert
    expect([wildcardUrl, wildcardBind, clearOverTls, withPath, halfPair].map((r) => r.code)).toEqual([1, 1, 1, 1, 1]);
    expect(wildcardUrl.err).toBe('Error: --public-url cannot name 0.0.0.0: no client can reach the wildcard address; name this host\n');
    expect(wildcardBind.err).toBe('Error: listening on 0.0.0.0 needs --public-url naming this host as clients reach it (signed URLs carry it)\n');
    expect(clearOverTls.err).toBe("Error: --public-url must be https:// when the server speaks TLS, not 'http://cfs.example.org:8787'\n");
    expect(withPath.err).toBe("Error: --public-url must be a scheme, host and port only (such as https://cfs.example.org:8787), not 'https://cfs.example.org/x'\n");
    expect(halfPair.err).toBe('Error: --tls-cert and --tls-key go together\n');
    expect(existsSync(dir)).toBe(false);
  });
});

describe('the API token in the data directory', () => {
  const temp = tempDataDir();
  afterAll(() => temp.dispose());

  it('is made at first start with mode 0600, kept across starts, and replaced by CFS_API_TOKEN when that is given', () => {
    // Arrange
    const dir = join(temp.dir, 'made');
    // Act
    const first = loadOrCreateApiToken(dir);
    const again = loadOrCreateApiToken(dir);
    const mode = statSync(join(dir, 'api-token')).mode & 0o777;
    const given = loadOrCreateApiToken(dir, 'from-the-environment');
    const afterGiven = loadOrCreateApiToken(dir);
    // Assert
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(again).toBe(first);
    expect(mode).toBe(0o600);
    expect(given).toBe('from-the-environment');
    expect(afterGiven).toBe('from-the-environment');
  });

  it('tightens a token file found readable by others to 0600', () => {
    // Arrange
    const dir = join(temp.dir, 'loose');
    mkdirSync(dir);
    writeFileSync(join(dir, 'api-token'), 'kept-token\n', { mode: 0o644 });
    // Act
    const token = loadOrCreateApiToken(dir);
    // Assert
    expect(token).toBe('kept-token');
    expect(statSync(join(dir, 'api-token')).mode & 0o777).toBe(0o600);
  });
});

describe('the token the CLI sends', () => {
  const temp = tempDataDir();
  let recorder: Awaited<ReturnType<typeof recordingServer>>;
  const dirWith = (name: string, token: string) => {
    const dir = join(temp.dir, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'api-token'), `${token}\n`, { mode: 0o600 });
    return dir;
  };
  beforeAll(async () => {
    ensureBuilt();
    recorder = await recordingServer();
  });
  afterAll(async () => {
    await recorder.close();
    temp.dispose();
  });

  it('is CFS_API_TOKEN, else the token file of --data-dir, else of CFS_DATA_DIR, and nothing when none can be read', async () => {
    // Arrange
    const optionDir = dirWith('option', 'tok-from-option');
    const envDir = dirWith('env', 'tok-from-env-dir');
    // Act
    await cli({ CFS_API_URL: recorder.url, CFS_API_TOKEN: 'tok-123', CFS_DATA_DIR: envDir }, '--data-dir', optionDir, 'configurations', 'list', '--format', 'json');
    await cli({ CFS_API_URL: recorder.url, CFS_DATA_DIR: envDir }, '--data-dir', optionDir, 'configurations', 'list', '--format', 'json');
    await cli({ CFS_API_URL: recorder.url, CFS_DATA_DIR: envDir }, 'configurations', 'list', '--data-dir', optionDir, '--format', 'json');
    await cli({ CFS_API_URL: recorder.url, CFS_DATA_DIR: envDir }, 'configurations', 'list', '--format', 'json');
    await cli({ CFS_API_URL: recorder.url, CFS_DATA_DIR: join(temp.dir, 'none') }, 'configurations', 'list', '--format', 'json');
    // Assert
    expect(recorder.seen).toEqual(['Bearer tok-123', 'Bearer tok-from-option', 'Bearer tok-from-option', 'Bearer tok-from-env-dir', undefined]);
  });

  it("is read from ./.cfs, cfs server's default data directory, when nothing else names one", async () => {
    // Arrange: the bin run in a directory holding .cfs/api-token.
    const cwd = join(temp.dir, 'cwd');
    dirWith('cwd/.cfs', 'tok-from-default');
    const env: NodeJS.ProcessEnv = { ...process.env, CFS_API_URL: recorder.url };
    delete env.CFS_API_TOKEN;
    delete env.CFS_DATA_DIR;
    // Act
    const printed = await new Promise<string>((done) => execFile(process.execPath, [BIN, 'auth', 'token'], { cwd, env }, (_e, out) => done(out)));
    await new Promise((done) => execFile(process.execPath, [BIN, 'configurations', 'list'], { cwd, env }, done));
    // Assert
    expect(printed).toBe('tok-from-default\n');
    expect(recorder.seen.at(-1)).toBe('Bearer tok-from-default');
  });

  it('prints the token with `cfs auth token`, and says where it looked when there is none', async () => {
    // Arrange
    const dir = dirWith('printed', 'tok-printed');
    // Act
    const found = await cli({}, '--data-dir', dir, 'auth', 'token');
    const missing = await cli({}, '--data-dir', join(temp.dir, 'missing'), 'auth', 'token');
    // Assert
    expect(found).toMatchObject({ code: 0, out: 'tok-printed\n' });
    expect(missing.code).toBe(1);
    expect(missing.err).toBe(`Error: no API token: CFS_API_TOKEN is not set and ${join(temp.dir, 'missing', 'api-token')} cannot be read (ENOENT); run this as the server's user, with --data-dir naming its data directory\n`);
  });

  it("names where it looked for the token in a 401's one Error line", async () => {
    // Arrange
    const refusing = await recordingServer(401);
    try {
      // Act
      const result = await cli({ CFS_API_URL: refusing.url, CFS_DATA_DIR: join(temp.dir, 'absent') }, 'sessions', 'list');
      // Assert
      expect(result.code).toBe(2);
      expect(result.err).toBe(`Error: Unauthorized: an Authorization: Bearer token is required (no token sent: CFS_API_TOKEN is not set and ${join(temp.dir, 'absent', 'api-token')} cannot be read (ENOENT))\n`);
    } finally {
      await refusing.close();
    }
  });
});
