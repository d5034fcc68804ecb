import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';

/**
 * Answers that differed from CFS's and IMS's specs (issue 21, item 5), one test per difference
 * fixed, over the embedded server's HTTP as a client meets them (Node's server adds headers the
 * app alone never shows).
 */
const IMG = '3fa85f64-5717-4562-b3fc-2c963f66afa6';

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

describe('answers aligned with the CFS and IMS specs', () => {
  let runtime: EmbeddedRuntime;
  let dataDir: string;
  let repo: TempRepo;

  /** One request over HTTP with node:http (fetch refuses TRACE), with the server's token. */
  const send = (method: string, path: string, body?: unknown): Promise<RawAnswer> =>
    new Promise((done, fail) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(new URL(path, runtime.url), { method, headers: { authorization: `Bearer ${runtime.apiToken}`, ...(payload ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.on('error', fail);
      req.end(payload);
    });

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'cfs-spec-alignment-'));
    runtime = await startEmbeddedRuntime({ dataDir, port: 0, overrides: { workflow: new FakeWorkflow() } });
    repo = makeTempRepo();
    repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
  });
  afterAll(async () => {
    await runtime?.close();
    repo?.dispose();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('sends every 204 with no body and no content type (not text/plain)', async () => {
    // Arrange
    await send('PUT', '/apis/cfs/v3/configurations/to-delete', { layers: [{ clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] });
    const image = JSON.parse((await send('POST', '/apis/ims/v3/images', { name: 'to-delete' })).text) as { id: string };
    // Act
    const answers = [
      await send('DELETE', '/apis/cfs/v3/configurations/to-delete'),
      await send('DELETE', '/apis/cfs/v2/sessions'),
      await send('DELETE', `/apis/ims/v3/images/${image.id}`),
    ];
    // Assert
    for (const answer of answers) {
      expect(answer.status).toBe(204);
      expect(answer.headers['content-type']).toBeUndefined();
      expect(answer.text).toBe('');
    }
  });

  it.each([
    ['/apis/cfs/v3/sessions', 'GET, POST, DELETE, HEAD'],
    ['/apis/cfs/healthz', 'GET, HEAD'],
    ['/apis/cfs/openapi.json', 'GET, HEAD'],
    [`/apis/ims/v3/images/${IMG}/manifest`, 'GET, PUT, HEAD'],
    [`/apis/ims/v3/images/${IMG}/artifacts/rootfs/upload-url`, 'POST'],
    [`/apis/ims/v3/images/${IMG}/artifacts/rootfs/download-url`, 'POST'],
  ])('answers TRACE on %s with a 405 problem and Allow, as any other unserved method', async (path, allow) => {
    // Act
    const trace = await send('TRACE', path);
    const other = await send('PROPFIND', path);
    // Assert
    for (const answer of [trace, other]) {
      expect(answer.status).toBe(405);
      expect(answer.headers.allow).toBe(allow);
      expect(answer.headers['content-type']).toBe('application/problem+json');
    }
  });

  it('answers PATCH on a session with 405 saying why (this product differs on purpose)', async () => {
    // Act
    const v3 = await send('PATCH', '/apis/cfs/v3/sessions/any', { status: { session: { status: 'complete' } } });
    const v2 = await send('PATCH', '/apis/cfs/v2/sessions/any', {});
    // Assert
    for (const answer of [v3, v2]) {
      expect(answer.status).toBe(405);
      expect(answer.headers.allow).toBe('GET, DELETE, HEAD');
      expect(JSON.parse(answer.text).detail).toBe("PATCH on a session is not served: a session's status is written by this service's workflow only; delete the session to stop it");
    }
  });

  it('answers deleting a configuration in use with 400, as the spec lists (not 409)', async () => {
    // Arrange
    await send('PUT', '/apis/cfs/v3/configurations/in-use', { layers: [{ clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] });
    await send('POST', '/apis/cfs/v3/sessions', { name: 'user', configuration_name: 'in-use', target: { definition: 'image', groups: [{ name: 'Compute', members: [IMG] }] } });
    // Act
    const refused = await send('DELETE', '/apis/cfs/v2/configurations/in-use');
    // Assert
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text)).toMatchObject({ title: 'Bad Request', status: 400 });
    expect(JSON.parse(refused.text).detail).toContain("is used by session 'user'");
  });

  it('refuses unknown query parameters on IMS routes, as on CFS routes, and keeps force on delete', async () => {
    // Arrange
    const image = JSON.parse((await send('POST', '/apis/ims/v3/images', { name: 'queried' })).text) as { id: string };
    // Act
    const list = await send('GET', '/apis/ims/v3/images?foo=1');
    const describe = await send('GET', `/apis/ims/v3/images/${image.id}?cascade=true`);
    const create = await send('POST', '/apis/ims/images?dry_run=true', { name: 'never' });
    const forced = await send('DELETE', `/apis/ims/v3/images/${image.id}?force=true`);
    // Assert
    expect(list.status).toBe(400);
    expect(describe.status).toBe(400);
    expect(JSON.parse(describe.text).detail).toBe('cascade: query parameter is not supported here; this route takes none');
    expect(create.status).toBe(400);
    expect(JSON.parse(create.text).detail).toContain('dry_run: query parameter is not supported here');
    expect(forced.status).toBe(204);
  });
});
