import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpGitResolver } from '../../functions/adapters/aws/http-git-resolver.ts';

const SHA = 'a'.repeat(40);

describe("HttpGitResolver with a CFS source's login", () => {
  let server: Server;
  let url = '';
  const seen: Array<string | undefined> = [];
  beforeAll(async () => {
    // A dumb-protocol ref listing behind Basic authentication.
    server = createServer((request, response) => {
      seen.push(request.headers.authorization);
      if (request.headers.authorization !== `Basic ${Buffer.from('reader:s3cret').toString('base64')}`) {
        response.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'text/plain' }).end(`${SHA}\trefs/heads/main\n`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/site.git`;
  });
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends the login as Basic authentication and resolves the branch; without it the server refuses', async () => {
    // Arrange
    const resolver = new HttpGitResolver({ allowedSchemes: ['http'] });
    // Act
    const commit = await resolver.resolveBranch(url, 'main', { username: 'reader', password: 's3cret' });
    const refused = await resolver.resolveBranch(url, 'main').catch((error: Error) => error);
    // Assert
    expect(commit).toBe(SHA);
    expect((refused as Error).message).toMatch(/HTTP 401/);
    expect((refused as Error).message).not.toContain('s3cret');
    expect(seen).toEqual([`Basic ${Buffer.from('reader:s3cret').toString('base64')}`, undefined]);
  });
});
