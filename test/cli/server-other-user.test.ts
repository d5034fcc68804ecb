import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicRead } from '../../functions/api/auth.ts';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import type { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { cfsAsNobody, curlAsNobody } from '../helpers/other-user.ts';
import { BIN, ensureBuilt, startServer, tempDataDir } from './cli-harness.ts';

/**
 * Issue 17, item 1: another local user (`nobody`, through setpriv) reaches the server on
 * loopback but cannot act: every route of the OpenAPI document answers 401 (artifact URLs 403:
 * they carry their own signature), nothing is stored or started, and the CLI run as that user
 * cannot read the token file even with the data directory open to it.
 */
describe('a process of another local user against cfs server on loopback', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  let workflow: FakeWorkflow;
  beforeAll(async () => {
    ensureBuilt();
    data = tempDataDir();
    ({ runtime, workflow } = await startServer(join(data.dir, 'server')));
    // Everything but the token file is open to other users, so the file's own mode is what is tested.
    chmodSync(data.dir, 0o755);
    chmodSync(runtime.dataDir, 0o755);
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
  });

  it('gets 401 on every documented route with curl, and stores and starts nothing', async () => {
    // Act
    const attempts = await curlAsNobody(runtime, join(data.dir, 'scratch'));
    // Assert
    expect(attempts.length).toBeGreaterThan(40);
    const artifact = attempts.filter((a) => a.path.startsWith('/artifacts/'));
    // The health and version routes need no token (they reveal nothing); every other route is a 401.
    const publicReads = attempts.filter((a) => isPublicRead(a.method, a.path));
    const api = attempts.filter((a) => !a.path.startsWith('/artifacts/') && !isPublicRead(a.method, a.path));
    expect(api.filter((a) => a.status !== 401)).toEqual([]);
    expect(publicReads.map((a) => a.path).sort()).toEqual(['/apis/cfs', '/apis/cfs/', '/apis/cfs/healthz', '/apis/cfs/v2', '/apis/cfs/v3', '/apis/cfs/versions', '/apis/ims/healthz/live', '/apis/ims/healthz/ready', '/apis/ims/version']);
    expect(publicReads.every((a) => a.status === 200)).toBe(true);
    // Signed URLs answer for themselves: no signature is a 403, and a JSON body is not an artifact's (415).
    expect(artifact.map((a) => `${a.method} ${a.status}`).sort()).toEqual(['GET 403', 'HEAD 403', 'PUT 415']);
    expect(api.some((a) => a.method === 'POST' && a.path === '/apis/cfs/v3/sessions')).toBe(true);
    expect(await runtime.ports.sessions.get('attack')).toBeUndefined();
    expect(await runtime.ports.configurations.get('attack')).toBeUndefined();
    expect(workflow.started).toEqual([]);
  });

  it('cannot read the token file with the cfs CLI, whose calls then answer 401 and create nothing', async () => {
    // Act
    const token = await cfsAsNobody(runtime, BIN, 'auth', 'token');
    const create = await cfsAsNobody(runtime, BIN, 'sessions', 'create', '--name', 'attack', '--configuration-name', 'attack', '--target-group', 'Compute', '3fa85f64-5717-4562-b3fc-2c963f66afa6');
    const list = await cfsAsNobody(runtime, BIN, 'sessions', 'list');
    // Assert
    expect(statSync(join(runtime.dataDir, 'api-token')).mode & 0o777).toBe(0o600);
    expect(token.code).toBe(1);
    expect(token.err).toContain(`${join(runtime.dataDir, 'api-token')} cannot be read (EACCES)`);
    for (const refused of [create, list]) {
      expect(refused.code).toBe(2);
      expect(refused.err).toMatch(/^Error: Unauthorized: an Authorization: Bearer token is required .*\(no token sent: .*EACCES\)\)\n$/);
    }
    expect(await runtime.ports.sessions.get('attack')).toBeUndefined();
    expect(workflow.started).toEqual([]);
  });
});
