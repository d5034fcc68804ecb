import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../functions/cli/main.ts';
import type { CliIo } from '../../functions/cli/io.ts';
import { tempDataDir } from './cli-harness.ts';

async function cli(env: Record<string, string>, ...argv: string[]) {
  let err = '';
  const io: CliIo = { out: () => undefined, err: (t) => void (err += `${t}\n`), env };
  return { code: await runCli(argv, io), err };
}

describe('cfs server --host and CFS_API_TOKEN', () => {
  const temp = tempDataDir();

  it('refuses to listen on 0.0.0.0 without CFS_API_TOKEN, before touching the data directory', async () => {
    // Act
    const result = await cli({}, 'server', '--host', '0.0.0.0', '--port', '0', '--data-dir', join(temp.dir, 'd'));
    temp.dispose();
    // Assert
    expect(result.code).not.toBe(0);
    expect(result.err.trim()).toBe('Error: refusing to listen on 0.0.0.0 without an API token: set CFS_API_TOKEN (clients send it as a Bearer token)');
    expect(existsSync(join(temp.dir, 'd'))).toBe(false);
  });

  it('sends CFS_API_TOKEN as a Bearer token, and nothing without it', async () => {
    // Arrange: a server that only records what it was sent.
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      res.setHeader('content-type', 'application/json');
      res.end('[]');
    });
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      // Act
      await cli({ CFS_API_URL: url, CFS_API_TOKEN: 'tok-123' }, 'configurations', 'list', '--format', 'json');
      await cli({ CFS_API_URL: url }, 'configurations', 'list', '--format', 'json');
    } finally {
      await new Promise((done) => server.close(done));
    }
    // Assert
    expect(seen[0]?.authorization).toBe('Bearer tok-123');
    expect(seen[1]?.authorization).toBeUndefined();
  });
});
