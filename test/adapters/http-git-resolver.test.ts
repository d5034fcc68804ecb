import { execFile, execFileSync, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpGitResolver } from '../../functions/adapters/aws/http-git-resolver.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';

/** Runs git's own smart HTTP server program (`git http-backend`, a CGI) for one request. */
function gitHttpBackend(projectRoot: string, request: IncomingMessage, response: ServerResponse, pathInfo: string, query: string): void {
  const cgi = spawn('git', ['http-backend'], {
    env: { ...process.env, GIT_PROJECT_ROOT: projectRoot, GIT_HTTP_EXPORT_ALL: '1', PATH_INFO: pathInfo, QUERY_STRING: query, REQUEST_METHOD: request.method ?? 'GET' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const chunks: Buffer[] = [];
  cgi.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  cgi.on('close', () => {
    const output = Buffer.concat(chunks);
    const split = output.indexOf('\r\n\r\n');
    const headers = output.subarray(0, split).toString('latin1').split('\r\n');
    let status = 200;
    for (const line of headers) {
      const [name, ...rest] = line.split(':');
      const value = rest.join(':').trim();
      if (name!.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else response.setHeader(name!, value);
    }
    response.statusCode = status;
    response.end(output.subarray(split + 4));
  });
}

describe('HttpGitResolver against real git servers', () => {
  let repo: TempRepo;
  let server: Server;
  let base: string;
  let mainCommit: string;
  let featureCommit: string;
  const requests: { path: string; authorization?: string }[] = [];

  beforeAll(async () => {
    repo = makeTempRepo();
    mainCommit = repo.commit('main', 'site.yml', '- hosts: all\n');
    featureCommit = repo.commit('feature/x', 'site.yml', '- hosts: Compute\n');
    // The dumb protocol serves the files `git update-server-info` writes.
    execFileSync('git', ['-C', repo.dir, 'update-server-info']);
    const root = dirname(repo.dir);
    const name = basename(repo.dir);
    server = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      requests.push({ path: url.pathname, authorization: request.headers.authorization });
      if (url.pathname.startsWith('/private/') && request.headers.authorization !== `Basic ${Buffer.from('reader:s3cret/pw').toString('base64')}`) {
        response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end();
        return;
      }
      // As forges answer a repository they do not have: 404 with a one-line text body.
      if (url.pathname.startsWith('/forge/')) {
        response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`Repository not found: http://${request.headers.authorization ? 'reader:s3cret@' : ''}forge.example${url.pathname}\n`);
        return;
      }
      if (url.pathname.startsWith('/dumb/')) {
        readFile(join(repo.dir, '.git', url.pathname.slice(`/dumb/${name}/`.length))).then(
          (body) => response.writeHead(200, { 'Content-Type': 'text/plain' }).end(body),
          () => response.writeHead(404).end(),
        );
        return;
      }
      const pathInfo = url.pathname.replace(/^\/(smart|private)/, '');
      gitHttpBackend(root, request, response, pathInfo.replace(`/${name}/`, `/${name}/.git/`), url.search.slice(1));
    });
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
    repo.dispose();
  });

  const resolver = new HttpGitResolver({ allowedSchemes: ['http', 'ssh'], timeoutMs: 5000 });
  const smartUrl = () => `${base}/smart/${basename(repo.dir)}`;

  it('resolves branches over smart HTTP to the commits git itself reports', async () => {
    // Act
    const main = await resolver.resolveBranch(smartUrl(), 'main');
    const feature = await resolver.resolveBranch(`${smartUrl()}/`, 'feature/x');
    // Assert
    expect([main, feature]).toEqual([mainCommit, featureCommit]);
    // git's own client against the same server (asynchronously: the server runs in this process).
    const { stdout } = await promisify(execFile)('git', ['ls-remote', '--', smartUrl(), 'refs/heads/main'], { encoding: 'utf8' });
    expect(stdout.split('\t')[0]).toBe(main);
  });

  it('resolves branches from a dumb HTTP server (the static info/refs file)', async () => {
    // Act
    const feature = await resolver.resolveBranch(`${base}/dumb/${basename(repo.dir)}`, 'feature/x');
    // Assert
    expect(feature).toBe(featureCommit);
  });

  it('names the branch and the repository when the branch does not exist', async () => {
    // Act
    const resolving = resolver.resolveBranch(smartUrl(), 'no-such-branch');
    // Assert
    await expect(resolving).rejects.toMatchObject({ name: 'GitError', message: `branch 'no-such-branch' does not exist in ${smartUrl()}` });
  });

  it('sends credentials from the URL as Basic authorization and never shows them in a message', async () => {
    // Arrange
    const withCredentials = `http://reader:${encodeURIComponent('s3cret/pw')}@${base.slice('http://'.length)}/private/${basename(repo.dir)}`;
    const wrong = withCredentials.replace('reader:', 'intruder:');
    // Act
    const resolved = await resolver.resolveBranch(withCredentials, 'main');
    const refused = await resolver.resolveBranch(wrong, 'main').catch((error: Error) => error);
    // Assert
    expect(resolved).toBe(mainCommit);
    expect(requests.some((r) => r.path.startsWith('/private/') && r.authorization?.startsWith('Basic '))).toBe(true);
    expect(refused).toMatchObject({ name: 'GitError', message: expect.stringContaining('HTTP 401 (the repository needs credentials)') });
    expect((refused as Error).message).not.toMatch(/s3cret|intruder/);
  });

  it("keeps the server's own message for a repository that does not exist, without credentials", async () => {
    // Arrange
    const url = `http://reader:s3cret@${base.slice('http://'.length)}/forge/org/missing.git`;
    // Act
    const refused = await resolver.resolveBranch(url, 'main').catch((error: Error) => error);
    // Assert
    expect(refused).toMatchObject({
      name: 'GitError',
      message: `cannot read branch 'main' of ${base}/forge/org/missing.git: HTTP 404: Repository not found: http://forge.example/forge/org/missing.git/info/refs`,
    });
  });

  it('asks for a commit when a branch lives behind ssh, which Lambda cannot reach without git', async () => {
    // Act
    const resolving = resolver.resolveBranch('git@example.com:org/repo.git', 'main');
    // Assert
    await expect(resolving).rejects.toMatchObject({ name: 'GitError', message: expect.stringContaining('give the layer a commit') });
  });

  it('refuses a scheme that is not allowed before any request, as a ValidationError naming clone_url', async () => {
    // Arrange
    const before = requests.length;
    // Act
    const resolving = new HttpGitResolver({ allowedSchemes: ['https'] }).resolveBranch(smartUrl(), 'main');
    // Assert
    await expect(resolving).rejects.toMatchObject({ name: 'ValidationError', field: 'clone_url' });
    expect(requests.length).toBe(before);
  });

  it('reports an unreachable server as a GitError', async () => {
    // Arrange: a port nobody listens on.
    const probe = createServer();
    await new Promise<void>((ready) => probe.listen(0, '127.0.0.1', ready));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((done) => probe.close(() => done()));
    // Act
    const resolving = resolver.resolveBranch(`http://127.0.0.1:${port}/repo.git`, 'main');
    // Assert
    await expect(resolving).rejects.toMatchObject({ name: 'GitError', message: expect.stringContaining('ECONNREFUSED') });
  });
});
