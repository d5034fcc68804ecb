import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbSourceStore } from '../../functions/adapters/dynamodb/dynamodb-source-store.ts';
import { startLocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { FsSourceSecretStore } from '../../functions/adapters/local/fs-source-secret-store.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { call, startCfsTestApp, type CfsTestApp, type Json } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

// The request bodies of shared/reference/cray-cli-requests.md, as the cray CLI sends them
// (IMG stands for an image UUID there), copied here: the test reads nothing outside the repository.
const IMG = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const V2_SESSION_CREATE = `{"name":"example","configurationName":"configurations-example","target":{"definition":"image","groups":[{"name":"Application","members":["IMG"]},{"name":"Application_UAN","members":["IMG"]}],"image_map":[{"source_id":"IMG","result_name":"my-result"}]}}`.replaceAll('IMG', IMG);
const CRAY_HEADERS = { Accept: '*/*', 'Content-Type': 'application/json' };

/** How the cray CLI shows an error: `Error: <title>: <detail>` only when both are present. */
function crayErrorLine(body: { title?: string; detail?: string }): string | undefined {
  return body.title && body.detail ? `Error: ${body.title}: ${body.detail}` : undefined;
}

describe('requests of the real cray CLI, replayed as they are', () => {
  let t: CfsTestApp;
  let repo: TempRepo;
  beforeAll(async () => {
    t = await startCfsTestApp();
    repo = makeTempRepo();
    repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
  });
  afterAll(async () => {
    await t.close();
    repo.dispose();
  });

  it('accepts `cray cfs configurations update --file` with a v3 file at v2, unconverted', async () => {
    // Arrange: the file a user would have, in v3 spelling.
    const file = JSON.stringify({ layers: [{ name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] });
    // Act
    const res = await call(t.app, 'PUT', '/apis/cfs/v2/configurations/configurations-example', file, CRAY_HEADERS);
    // Assert
    expect(res.status).toBe(200);
    expect(res.body.layers[0].commit).toMatch(/^[a-f0-9]{40}$/);
  });

  it('accepts `cray cfs v3 configurations update --drop-branches true` (drop_branches=True)', async () => {
    // Act
    const res = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/dropped?drop_branches=True', JSON.stringify({ layers: [{ cloneUrl: repo.url, playbook: 'site.yml', branch: 'main' }] }), CRAY_HEADERS);
    // Assert
    expect(res.status).toBe(200);
    expect(res.body.layers[0]).not.toHaveProperty('branch');
  });

  it('accepts `cray cfs configurations update --update-branches` (PATCH, no body)', async () => {
    // Act
    const res = await call(t.app, 'PATCH', '/apis/cfs/v2/configurations/configurations-example', undefined, { Accept: '*/*' });
    // Assert
    expect(res.status).toBe(200);
  });

  it('accepts the v2 `cray cfs sessions create ... --target-image-map` body as it is', async () => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v2/sessions', V2_SESSION_CREATE, CRAY_HEADERS);
    // Assert
    expect(res.status).toBe(200);
    expect(res.body.target).toEqual(JSON.parse(V2_SESSION_CREATE).target);
    expect(res.body.status.session.status).toBe('pending');
    expect(await cfsResponseErrors('post', '/v2/sessions', 200, res.body)).toBeUndefined();
  });

  it('accepts the v3 body (configuration_name) and the optional fields cray adds when given', async () => {
    // Arrange
    const body = JSON.parse(V2_SESSION_CREATE.replace('configurationName', 'configuration_name').replace('"example"', '"example-v3"'));
    // Act
    const v3 = await call(t.app, 'POST', '/apis/cfs/v3/sessions', JSON.stringify({ ...body, tags: { a: 'b', c: 'd' }, debug_on_failure: true, ansible_verbosity: 2 }), CRAY_HEADERS);
    const v2 = await call(
      t.app,
      'POST',
      '/apis/cfs/v2/sessions',
      JSON.stringify({ ...JSON.parse(V2_SESSION_CREATE), name: 'example-v2-opts', configurationLimit: 'base', ansibleLimit: IMG, ansibleVerbosity: 1, ansiblePassthrough: '--tags x', ansibleConfig: 'cfs-default-ansible-cfg', tags: { a: 'b' } }),
      CRAY_HEADERS,
    );
    // Assert
    expect(v3.status).toBe(201);
    expect(v3.body).toMatchObject({ tags: { a: 'b', c: 'd' }, debug_on_failure: true, ansible: { verbosity: 2 } });
    expect(v2.status).toBe(200);
    expect(v2.body).toMatchObject({ configuration: { limit: 'base' }, ansible: { limit: IMG, verbosity: 1, passthrough: '--tags x' } });
  });

  it('answers the body sent without target options with a clear title and detail', async () => {
    // Act
    const res = await call(
      t.app,
      'POST',
      '/apis/cfs/v2/sessions',
      '{"name":"plain","configurationName":"configurations-example","target":{"definition":"dynamic","groups":[],"image_map":[]}}',
      CRAY_HEADERS,
    );
    // Assert
    expect(res.status).toBe(400);
    expect(crayErrorLine(res.body)).toBe(
      "Error: Bad Request: target.definition: 'dynamic' sessions are not served: this service runs image customization only (target.definition 'image')",
    );
  });

  it('answers a duplicate create with title and detail, as cray shows them', async () => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v2/sessions', V2_SESSION_CREATE, CRAY_HEADERS);
    // Assert
    expect(crayErrorLine(res.body)).toBe("Error: Conflict: session 'example' already exists");
  });

  it('serves describe, list and delete (Content-Length: 0) as cray sends them', async () => {
    // Act
    const describe = await call(t.app, 'GET', '/apis/cfs/v2/sessions/example', undefined, { Accept: '*/*' });
    const list = await call(t.app, 'GET', '/apis/cfs/v2/sessions', undefined, { Accept: '*/*' });
    const del = await t.app.request('/apis/cfs/v2/sessions/example', { method: 'DELETE', headers: { Accept: '*/*', 'Content-Length': '0' } });
    const config = await call(t.app, 'GET', '/apis/cfs/v2/configurations/configurations-example', undefined, { Accept: '*/*' });
    // Assert
    expect(describe.status).toBe(200);
    expect(list.body.map((s: { name: string }) => s.name)).toContain('example');
    expect(del.status).toBe(204);
    expect(config.status).toBe(200);
  });
});

// How craycli (Cray-HPE/craycli, cray/generator.py and cray/rest.py) builds the discovery and
// health requests: the CFS module's server URL is `.../apis/cfs` and each route of its spec is
// appended as written, so `cray cfs list` (route `/`) sends `GET /apis/cfs/` with the slash,
// `cray cfs versions list` `GET /apis/cfs/versions`, `cray cfs v2 list` `GET /apis/cfs/v2`,
// `cray cfs healthz list` `GET /apis/cfs/healthz`; no query and no body (a GET with no body
// parameters sends none). IMS's health routes are tagged cli_ignore (no command); its version
// route is cli_hidden: `cray ims version list` sends `GET /apis/ims/version`. Commands of
// resources this product does not serve reach their refusals the same way.
describe('discovery, health and refusals as the real cray CLI requests them', () => {
  let t: CfsTestApp;
  beforeAll(async () => {
    t = await startCfsTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it.each([
    ['cray cfs list', '/apis/cfs/', '/'],
    ['cray cfs versions list', '/apis/cfs/versions', '/versions'],
    ['cray cfs v2 list', '/apis/cfs/v2', '/v2'],
    ['cray cfs v3 list', '/apis/cfs/v3', '/v3'],
    ['cray cfs healthz list', '/apis/cfs/healthz', '/healthz'],
  ])('answers `%s` (GET %s) with 200, valid against the spec', async (_command, path, specPath) => {
    // Act
    const res = await call(t.app, 'GET', path, undefined, { Accept: '*/*' });
    // Assert
    expect(res.status).toBe(200);
    expect(await cfsResponseErrors('get', specPath, 200, res.body)).toBeUndefined();
  });

  it('answers `cray ims version list` (GET /apis/ims/version) with the version string', async () => {
    // Act
    const res = await call(t.app, 'GET', '/apis/ims/version', undefined, { Accept: '*/*' });
    // Assert
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.each([
    ['cray cfs components list', '/apis/cfs/v2/components', 'CFS components'],
    ['cray cfs v3 components describe x1000c0s0b0n0', '/apis/cfs/v3/components/x1000c0s0b0n0', 'CFS components'],
    ['cray ims jobs list', '/apis/ims/v3/jobs', 'IMS jobs'],
    ['cray ims recipes list', '/apis/ims/v3/recipes', 'IMS recipes'],
    ['cray ims public-keys list', '/apis/ims/v3/public-keys', 'IMS public keys'],
    ['cray ims remote-build-nodes list', '/apis/ims/v3/remote-build-nodes', 'IMS remote build nodes'],
    ['cray ims deleted images list', '/apis/ims/v3/deleted/images', 'IMS deleted resources'],
  ])('answers `%s` (GET %s) with one Error line naming the feature', async (_command, path, feature) => {
    // Act
    const res = await call(t.app, 'GET', path, undefined, { Accept: '*/*' });
    // Assert
    expect(res.status).toBe(404);
    expect(crayErrorLine(res.body)).toMatch(new RegExp(`^Error: Not Found: ${feature} .* not part of this product: [^\\n]+$`));
  });
});

// `cray cfs configurations list --in-use true|false` (v2) and `cray cfs v3 configurations list
// --in-use true|false`: craycli reads `in_use` from CFS's spec as a boolean (click.BOOL) and hands
// it to requests, which writes Python's True/False, so the query is `?in_use=True` / `?in_use=False`.
describe('cray cfs configurations list --in-use, replayed as cray sends it', () => {
  let t: CfsTestApp;
  beforeAll(async () => {
    t = await startCfsTestApp({ configuration: 'configurations-example' });
    await t.ports.configurations.put({ ...(await t.ports.configurations.get('configurations-example'))!, name: 'unused' });
    // A pending session names configurations-example: in use.
    await call(t.app, 'POST', '/apis/cfs/v2/sessions', V2_SESSION_CREATE, CRAY_HEADERS);
  });
  afterAll(() => t.close());

  it.each(['v2', 'v3'])('answers %s ?in_use=True with the configurations a pending session uses, and ?in_use=False with the others, valid against the spec', async (version) => {
    // Act
    const used = await call(t.app, 'GET', `/apis/cfs/${version}/configurations?in_use=True`, undefined, { Accept: '*/*' });
    const unused = await call(t.app, 'GET', `/apis/cfs/${version}/configurations?in_use=False`, undefined, { Accept: '*/*' });
    // Assert
    expect(used.status).toBe(200);
    expect(unused.status).toBe(200);
    const list = (body: Json) => (version === 'v2' ? body : body.configurations) as Array<{ name: string }>;
    expect(list(used.body).map((c) => c.name)).toEqual(['configurations-example']);
    expect(list(unused.body).map((c) => c.name)).toEqual(['unused']);
    expect(await cfsResponseErrors('get', `/${version}/configurations`, 200, used.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', `/${version}/configurations`, 200, unused.body)).toBeUndefined();
  });
});

describe('cray cfs v3 sources, replayed as cray sends them', () => {
  let app: Awaited<ReturnType<typeof startSourcesApp>>;
  beforeAll(async () => {
    app = await startSourcesApp();
  });
  afterAll(async () => app.close());

  it('creates with `cray cfs v3 sources create --name --clone-url --credentials-username --credentials-password`, and the answer has no login', async () => {
    // Arrange: the body cray's generator builds from those options.
    const body = '{"name": "https://git.example/site.git", "clone_url": "https://git.example/site.git", "credentials": {"username": "cray-user", "password": "cray-pass-1"}}';
    // Act
    const res = await call(app.app, 'POST', '/apis/cfs/v3/sources', body, CRAY_HEADERS);
    // Assert
    expect(res.status).toBe(201);
    expect(res.text).not.toContain('cray-pass-1');
    expect(await cfsResponseErrors('post', '/v3/sources', 201, res.body)).toBeUndefined();
  });

  it('describes, updates and deletes by the name cray quotes twice (a clone URL as the name)', async () => {
    // Arrange: urllib.parse.quote(quote(name, safe=""), safe=""), as craycli's sources shim does.
    const twice = encodeURIComponent(encodeURIComponent('https://git.example/site.git'));
    // Act
    const described = await call(app.app, 'GET', `/apis/cfs/v3/sources/${twice}`, undefined, { Accept: '*/*' });
    const updated = await call(app.app, 'PATCH', `/apis/cfs/v3/sources/${twice}`, '{"description": "site", "credentials": {"password": "cray-pass-2"}}', CRAY_HEADERS);
    const listed = await call(app.app, 'GET', '/apis/cfs/v3/sources?in_use=False&limit=10', undefined, { Accept: '*/*' });
    const deleted = await call(app.app, 'DELETE', `/apis/cfs/v3/sources/${twice}`, undefined, { Accept: '*/*', 'Content-Length': '0' });
    // Assert
    expect(described.status).toBe(200);
    expect(described.body.name).toBe('https://git.example/site.git');
    expect(updated.status).toBe(200);
    expect(updated.text).not.toContain('cray-pass-2');
    expect(listed.body.sources.map((s: { name: string }) => s.name)).toEqual(['https://git.example/site.git']);
    expect(deleted.status).toBe(204);
  });

  it('answers a duplicate create with title and detail, as cray shows them', async () => {
    // Arrange
    const body = '{"name": "dup", "clone_url": "https://git.example/dup.git", "credentials": {"username": "u", "password": "p"}}';
    await call(app.app, 'POST', '/apis/cfs/v3/sources', body, CRAY_HEADERS);
    // Act
    const res = await call(app.app, 'POST', '/apis/cfs/v3/sources', body, CRAY_HEADERS);
    // Assert
    expect(res.status).toBe(409);
    expect(crayErrorLine(res.body)).toBe("Error: Conflict: source 'dup' already exists");
  });
});

/** The CFS test app with the sources a composition root gives it: the table's store and owner-only secret files. */
async function startSourcesApp() {
  const t = await startCfsTestApp();
  const dir = mkdtempSync(join(tmpdir(), 'cfs-cray-sources-'));
  const dynamo = await startLocalDynamo({ tableName: 'cfs-cray-sources' });
  t.ports.sources = new DynamoDbSourceStore(dynamo.documents, 'cfs-cray-sources');
  t.ports.sourceSecrets = new FsSourceSecretStore(join(dir, 'secrets'));
  return {
    app: t.app,
    close: async () => {
      await t.close();
      await dynamo.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
