import SwaggerParser from '@apidevtools/swagger-parser';
import validatorModule from 'openapi-response-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../functions/api/app.ts';
import { apiOperations, OPENAPI_PATH } from '../../functions/api/openapi.ts';
import { v3OptionsPatchSchema } from '../../functions/core/options/options-schemas.ts';
import { SESSION_NAME_PATTERN } from '../../functions/core/sessions/session-schemas.ts';
import { COMMIT_A, IMG1 } from '../helpers/cfs-fakes.ts';
import { call, startCfsTestApp, type CfsTestApp, type Json } from './cfs-app.ts';

type ValidatorClass = new (args: unknown) => { validateResponse(status: number | string, body: unknown): unknown };
const OpenAPIResponseValidator =
  (validatorModule as unknown as { default?: ValidatorClass }).default ?? (validatorModule as unknown as ValidatorClass);

/** `METHOD /path/{param}` of every route the app answers (405 catch-alls left out), Hono's `:name` and `*` as OpenAPI parameters. */
function servedRoutes(app: CfsTestApp['app']): string[] {
  const routes = app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}').replace(/\*$/, '{key}')}`);
  return [...new Set(routes)].sort();
}

/** The same, from the document; path parameter names are compared by position only. */
function documentedRoutes(document: Json): string[] {
  const out: string[] = [];
  for (const [path, operations] of Object.entries(document.paths as Record<string, object>)) {
    for (const method of Object.keys(operations)) out.push(`${method.toUpperCase()} ${path}`);
  }
  return out.sort();
}

const byPosition = (route: string) => route.replace(/\{\w+\}/g, '{}');

describe('the API\'s own OpenAPI document', () => {
  let t: CfsTestApp;
  let document: Json;
  beforeAll(async () => {
    t = await startCfsTestApp();
    document = (await call(t.app, 'GET', OPENAPI_PATH)).body;
  });
  afterAll(() => t.close());

  it('is served at /apis/cfs/openapi.json and is a valid OpenAPI 3.0 document', async () => {
    // Act
    const res = await call(t.app, 'GET', OPENAPI_PATH);
    const validated = (await SwaggerParser.validate(structuredClone(res.body))) as Json;
    // Assert
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(validated.openapi).toBe('3.0.3');
  });

  it('documents every route the app serves, and nothing it does not serve', () => {
    // Act
    const served = servedRoutes(t.app).map(byPosition);
    const documented = documentedRoutes(document).map(byPosition);
    // Assert
    expect(served.filter((r) => !documented.includes(r)), 'routes without an entry in OPERATIONS of functions/api/openapi.ts').toEqual([]);
    expect(documented.filter((r) => !served.includes(r)), 'documented routes the app does not serve').toEqual([]);
    expect(documented.length).toBeGreaterThan(40);
  });

  it('leaves the embedded artifact endpoint out where the store presigns its own URLs', () => {
    // Arrange
    const s3LikeStore = { put: async () => undefined, get: async () => undefined, head: async () => undefined, delete: async () => undefined, list: async () => [], uploadUrl: async () => '', downloadUrl: async () => '' };
    const app = createApp({ ...t.ports, artifacts: s3LikeStore as never });
    // Act
    const served = servedRoutes(app);
    const documented = apiOperations({ artifactEndpoint: false }).map((op) => `${op.method.toUpperCase()} ${op.path}`);
    // Assert
    expect(served.some((r) => r.includes('/artifacts/{key}'))).toBe(false);
    expect(documented.some((r) => r.includes('/artifacts/{key}'))).toBe(false);
  });

  it('describes this product\'s status extensions of a session in v3 and v2', () => {
    // Act
    const v3Status = document.components.schemas.V3SessionData.properties.status.properties;
    const v2Status = document.components.schemas.V2Session.properties.status.properties;
    // Assert
    for (const extension of ['layers', 'plan', 'steps', 'failure', 'message', 'layer_cache', 'layer_keys']) {
      expect(v3Status[extension], extension).toBeDefined();
      expect(v2Status[extension], extension).toBeDefined();
    }
    expect(v3Status.steps.items.properties.state.enum).toEqual(['running', 'succeeded', 'failed', 'skipped', 'cached']);
    expect(Object.keys(v3Status.steps.items.properties.cached_from.properties)).toEqual(['session', 'created']);
    expect(v3Status.failure.properties.reason.type).toBe('string');
  });

  it("documents a session's and an automation's validation as an extension, in the bodies sent and the ones answered", () => {
    // Arrange
    const schemas = document.components.schemas;
    // Act
    // Sent at the top of a create body; answered under the session's `status`, which the CFS spec leaves open.
    const answeredIn = (name: string) => schemas[name].properties.status;
    const where = [
      ...['V3SessionCreate', 'V2SessionCreate', 'AutomationSpec', 'Automation'].map((name) => [name, schemas[name]]),
      ...['V3SessionData', 'V2Session'].map((name) => [`${name}.status`, answeredIn(name)]),
    ] as const;
    // Assert
    for (const [name, schema] of where) {
      expect(schema.properties.validation?.description, name).toMatch(/^Extension: /);
      expect(schema.required ?? [], name).not.toContain('validation');
    }
    expect(schemas.V3SessionData.properties).not.toHaveProperty('validation');
    expect(schemas.V2Session.properties).not.toHaveProperty('validation');
    const sent = schemas.V3SessionCreate.properties.validation;
    expect(Object.keys(sent.properties).sort()).toEqual(['boot', 'checks']);
    expect(sent.properties.boot.required).toEqual(['success_pattern']);
    expect(sent.properties.boot.properties.kernel_parameters.default).toBe('root=/dev/vda rootfstype=squashfs ro console=ttyS0');
    expect(sent.properties.boot.properties.timeout_seconds).toMatchObject({ minimum: 10, maximum: 3600, default: 300 });
    // As answered, every default is filled in.
    expect(answeredIn('V3SessionData').properties.validation.properties.boot.required.sort()).toEqual(['kernel_parameters', 'memory_mib', 'network', 'success_pattern', 'timeout_seconds']);
  });

  it('takes request bodies and query parameters from the zod schemas that validate them', () => {
    // Act
    const create = document.components.schemas.V3SessionCreate;
    const optionsUpdate = document.components.schemas.V3OptionsUpdate;
    const listParameters = document.paths['/apis/cfs/v3/sessions'].get.parameters.map((p: Json) => p.name);
    const deleteStatus = document.paths['/apis/cfs/v3/sessions'].delete.parameters.find((p: Json) => p.name === 'status');
    // Assert
    expect(create.additionalProperties).toBe(false);
    // Absent, the target is CFS's `dynamic` one, which is refused: the document requires it.
    expect(create.required).toEqual(['name', 'configuration_name', 'target']);
    expect(create.properties.name.pattern).toBe(SESSION_NAME_PATTERN.source);
    expect(Object.keys(optionsUpdate.properties).sort()).toEqual(Object.keys(v3OptionsPatchSchema.shape).sort());
    expect(listParameters).toEqual(['status', 'succeeded', 'name_contains', 'min_age', 'max_age', 'tags', 'limit', 'after_id', 'search_stopped_early']);
    expect(deleteStatus.schema.enum).toEqual(['pending', 'running', 'complete', '']);
  });

  it('describes what the API really answers: a session, a page, a bulk delete, the options and a problem validate against it', async () => {
    // Arrange
    const api = (await SwaggerParser.dereference(structuredClone(document))) as Json;
    const validate = (path: string, method: string, status: number, body: unknown) => {
      const operation = api.paths[path][method];
      return new OpenAPIResponseValidator({ responses: operation.responses, components: api.components }).validateResponse(status, body);
    };
    await t.ports.configurations.put({ name: 'c', last_updated: '2026-11-26T09:00:00Z', layers: [{ name: 'base', clone_url: 'https://git.example/base.git', playbook: 'site.yml', commit: COMMIT_A }] });
    const body = { name: 'documented', configuration_name: 'c', tags: { a: 'b' }, target: { definition: 'image', groups: [{ name: 'Compute', members: [IMG1] }] } };
    const proved = { ...body, name: 'documented-proved', validation: { checks: [{ name: 'hello', command: 'hello' }], boot: { success_pattern: 'up' } } };
    // Act
    const created = await call(t.app, 'POST', '/apis/cfs/v3/sessions', body);
    await t.ports.sessions.update('documented', (s) => ({
      ...s,
      status: { ...s.status, steps: [{ name: 'validate', state: 'failed', start_time: '2026-11-26T10:00:00Z' }], failure: { step: 'validate', reason: 'x' }, message: 'm' },
    }));
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions/documented');
    const page = await call(t.app, 'GET', '/apis/cfs/v3/sessions?limit=1&tags=a%3Db');
    const options = await call(t.app, 'GET', '/apis/cfs/v3/options');
    const missing = await call(t.app, 'GET', '/apis/cfs/v3/sessions/nobody');
    const provedV3 = await call(t.app, 'POST', '/apis/cfs/v3/sessions', proved);
    const provedV2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions/documented-proved');
    const deleted = await call(t.app, 'DELETE', '/apis/cfs/v3/sessions?status=&name_contains=documented');
    // Assert
    expect(validate('/apis/cfs/v3/sessions', 'post', 201, created.body)).toBeUndefined();
    expect(validate('/apis/cfs/v2/sessions/{session_name}', 'get', 200, v2.body)).toBeUndefined();
    expect(validate('/apis/cfs/v3/sessions', 'get', 200, page.body)).toBeUndefined();
    expect(validate('/apis/cfs/v3/options', 'get', 200, options.body)).toBeUndefined();
    expect(validate('/apis/cfs/v3/sessions/{session_name}', 'get', 404, missing.body)).toBeUndefined();
    expect(validate('/apis/cfs/v3/sessions', 'delete', 200, deleted.body)).toBeUndefined();
    expect(validate('/apis/cfs/v3/sessions', 'post', 201, provedV3.body)).toBeUndefined();
    expect(validate('/apis/cfs/v2/sessions/{session_name}', 'get', 200, provedV2.body)).toBeUndefined();
    expect(provedV2.body.status.validation.boot.timeout_seconds).toBe(300);
    expect(deleted.body).toEqual({ session_ids: ['documented', 'documented-proved'] });
    expect(validate('/apis/cfs/v3/sessions', 'post', 201, { ...created.body, colour: 'blue' })).toBeDefined();
  });
});
