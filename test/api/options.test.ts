import SwaggerParser from '@apidevtools/swagger-parser';
import validatorModule from 'openapi-response-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_PATH } from '../../functions/api/openapi.ts';
import { settingsReader } from '../../functions/core/options/workflow-settings.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../functions/steps/step-ports.ts';
import { loadContract } from '../contract/response-errors.ts';
import { call, startCfsTestApp, type CfsTestApp, type Json } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

const SETTINGS = '/apis/cfs-image/v1/settings';

type ValidatorClass = new (args: unknown) => { validateResponse(status: number | string, body: unknown): unknown };
const OpenAPIResponseValidator =
  (validatorModule as unknown as { default?: ValidatorClass }).default ?? (validatorModule as unknown as ValidatorClass);

describe('CFS options through the API (dynalite)', () => {
  let t: CfsTestApp;
  beforeAll(async () => {
    t = await startCfsTestApp();
  });
  afterAll(() => t.close());

  it('answers GET with exactly the V3Options and V2Options in force, each valid against the closed upstream schema', async () => {
    // Act
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/options');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/options');
    // Assert
    expect(v3.status).toBe(200);
    expect(v3.body).toEqual({ session_ttl: '7d', debug_wait_time: 3600, default_page_size: 1000, default_ansible_config: 'cfs-default-ansible-cfg', include_ara_links: false });
    expect(v2.body).toEqual({ sessionTTL: '7d', defaultAnsibleConfig: 'cfs-default-ansible-cfg' });
    expect(await cfsResponseErrors('get', '/v3/options', 200, v3.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/options', 200, v2.body)).toBeUndefined();
    // The contract refuses what the answers used to carry: a setting of this product, a v3-only key in v2.
    expect(await cfsResponseErrors('get', '/v3/options', 200, { ...v3.body, image_wait_timeout: 3600 })).toBeDefined();
    expect(await cfsResponseErrors('get', '/v2/options', 200, { ...v2.body, defaultPageSize: 1000 })).toBeDefined();
  });

  it('stores a PATCH of either version and answers each valid against its upstream schema, v2 without the v3-only options', async () => {
    // Act
    const v3 = await call(t.app, 'PATCH', '/apis/cfs/v3/options', { default_page_size: 500, debug_wait_time: 60, batch_size: 10, additional_inventory_source: '' });
    const v2 = await call(t.app, 'PATCH', '/apis/cfs/v2/options', { sessionTTL: '2d', defaultPlaybook: 'site.yml', loggingLevel: 'DEBUG' });
    const read = await call(t.app, 'GET', '/apis/cfs/v3/options');
    // Assert
    expect(v3.status).toBe(200);
    expect(v3.body).toMatchObject({ default_page_size: 500, debug_wait_time: 60, batch_size: 10, additional_inventory_source: '', session_ttl: '7d' });
    expect(v2.status).toBe(200);
    expect(v2.body).toEqual({ sessionTTL: '2d', defaultPlaybook: 'site.yml', loggingLevel: 'DEBUG', batchSize: 10, defaultAnsibleConfig: 'cfs-default-ansible-cfg' });
    expect(read.body).toMatchObject({ session_ttl: '2d', default_playbook: 'site.yml', logging_level: 'DEBUG', default_page_size: 500 });
    expect(await cfsResponseErrors('patch', '/v3/options', 200, v3.body)).toBeUndefined();
    expect(await cfsResponseErrors('patch', '/v2/options', 200, v2.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v3/options', 200, read.body)).toBeUndefined();
  });

  it.each([
    ['/apis/cfs/v3/options', { unknown_option: 1 }, 'unknown_option', 'unknown option'],
    ['/apis/cfs/v2/options', { session_ttl: '1d' }, 'session_ttl', 'unknown option; v2 spells it sessionTTL'],
    ['/apis/cfs/v2/options', { defaultPageSize: 10 }, 'defaultPageSize', 'not a v2 option (CFS v2 has none of that name): set default_page_size with PATCH /apis/cfs/v3/options'],
    ['/apis/cfs/v3/options', { include_ara_links: true }, 'include_ara_links', 'must be false'],
    ['/apis/cfs/v3/options', { image_wait_timeout: 900 }, 'image_wait_timeout', `not a CFS option: this product's own settings are set with PATCH ${SETTINGS} (cfs settings update) as image_wait_timeout`],
    ['/apis/cfs/v2/options', { cloneUrlSchemes: ['https'] }, 'cloneUrlSchemes', `PATCH ${SETTINGS} (cfs settings update) as clone_url_schemes`],
  ])('answers PATCH %s %j with a 400 problem naming the option and where it lives', async (path, body, field, detail) => {
    // Arrange
    const version = path.includes('/v2/') ? '/v2/options' : '/v3/options';
    const before = await t.ports.options.get();
    // Act
    const res = await call(t.app, 'PATCH', path, body);
    // Assert
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.field).toBe(field);
    expect(res.body.detail).toContain(detail);
    expect(await cfsResponseErrors('patch', version, 400, res.body)).toBeUndefined();
    expect(await t.ports.options.get()).toEqual(before);
  });

  it('answers other methods with 405 and Allow, and an empty body with 400', async () => {
    // Act
    const put = await call(t.app, 'PUT', '/apis/cfs/v3/options', {});
    const empty = await call(t.app, 'PATCH', '/apis/cfs/v2/options', '');
    // Assert
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, PATCH, HEAD');
    expect(empty.status).toBe(400);
    expect(empty.body.field).toBe('body');
  });
});

describe("this product's settings through the API (dynalite)", () => {
  let t: CfsTestApp;
  beforeAll(async () => {
    t = await startCfsTestApp();
  });
  afterAll(() => t.close());

  it('answers GET with every setting in force, the deployment defaults while none is set', async () => {
    // Act
    const res = await call(t.app, 'GET', SETTINGS);
    // Assert
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ image_wait_timeout: 3600, image_poll_interval: 30, squashfs_compressor: 'source', squashfs_compression_level: null, clone_url_schemes: ['https', 'ssh', 'file'], layer_cache: true, layer_cache_max_age_seconds: 604800, layer_cache_max_bytes: null });
  });

  it('stores a PATCH, answers every setting, leaves the CFS options as they were, and the workflow settings read from the same store follow it', async () => {
    // Arrange
    const settings = settingsReader(t.ports.options, { ...DEFAULT_WORKFLOW_SETTINGS, allowedCloneSchemes: ['https', 'ssh', 'file'] });
    const optionsBefore = await call(t.app, 'GET', '/apis/cfs/v3/options');
    // Act
    const first = await call(t.app, 'PATCH', SETTINGS, { image_wait_timeout: 900, squashfs_compressor: 'zstd', squashfs_compression_level: 3 });
    const second = await call(t.app, 'PATCH', SETTINGS, { image_poll_interval: 10, clone_url_schemes: ['https'] });
    const read = await call(t.app, 'GET', SETTINGS);
    const optionsAfter = await call(t.app, 'GET', '/apis/cfs/v3/options');
    // Assert
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ image_wait_timeout: 900, image_poll_interval: 30, squashfs_compressor: 'zstd', squashfs_compression_level: 3, clone_url_schemes: ['https', 'ssh', 'file'], layer_cache: true, layer_cache_max_age_seconds: 604800, layer_cache_max_bytes: null });
    expect(second.body).toEqual(read.body);
    expect(read.body).toEqual({ image_wait_timeout: 900, image_poll_interval: 10, squashfs_compressor: 'zstd', squashfs_compression_level: 3, clone_url_schemes: ['https'], layer_cache: true, layer_cache_max_age_seconds: 604800, layer_cache_max_bytes: null });
    expect(optionsAfter.body).toEqual(optionsBefore.body);
    expect(await settings()).toMatchObject({ imageWaitTimeoutSeconds: 900, imagePollIntervalSeconds: 10, squashfs: { compressor: 'zstd', level: 3 }, allowedCloneSchemes: ['https'] });
  });

  it('stores the layer cache settings, the workflow settings follow them, and a null size cap is the deployment default again', async () => {
    // Arrange
    const settings = settingsReader(t.ports.options, { ...DEFAULT_WORKFLOW_SETTINGS, allowedCloneSchemes: ['https', 'ssh', 'file'] });
    // Act
    const set = await call(t.app, 'PATCH', SETTINGS, { layer_cache: false, layer_cache_max_age_seconds: 3600, layer_cache_max_bytes: 5_000_000_000 });
    const workflowWhileSet = await settings();
    const reset = await call(t.app, 'PATCH', SETTINGS, { layer_cache_max_bytes: null });
    // Assert
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ layer_cache: false, layer_cache_max_age_seconds: 3600, layer_cache_max_bytes: 5_000_000_000 });
    expect(workflowWhileSet.layerCache).toEqual({ enabled: false, maxAgeSeconds: 3600, maxBytes: 5_000_000_000 });
    expect(reset.body).toMatchObject({ layer_cache: false, layer_cache_max_age_seconds: 3600, layer_cache_max_bytes: null });
    expect((await settings()).layerCache).toEqual({ enabled: false, maxAgeSeconds: 3600, maxBytes: null });
  });

  it.each([
    [{ image_wait_timeout: 0 }, 'image_wait_timeout', 'image_wait_timeout: must be at least 1'],
    [{ squashfs_compressor: 'brotli' }, 'squashfs_compressor', 'must be one of source, gzip, xz, lzo, lz4, zstd'],
    [{ squashfs_compressor: 'gzip', squashfs_compression_level: 12 }, 'squashfs_compression_level', 'must be from 1 to 9 for gzip'],
    [{ clone_url_schemes: ['ext'] }, 'clone_url_schemes', 'ext not supported by this deployment'],
    [{ session_ttl: '1d' }, 'session_ttl', 'a CFS option, not a setting of this product: set it with PATCH /apis/cfs/v3/options (cfs options update)'],
    [{ layer_cache: {} }, 'layer_cache', 'must be true or false'],
    [{ layer_cache_max_age_seconds: -1 }, 'layer_cache_max_age_seconds', 'must be at least 0'],
    [{ layer_cache_max_bytes: 1.5 }, 'layer_cache_max_bytes', 'must be an integer'],
    [{ layer_cache_ttl: 5 }, 'layer_cache_ttl', 'unknown setting; the settings are image_wait_timeout, image_poll_interval'],
  ])('answers PATCH %j with a 400 problem naming the setting, and changes nothing', async (body, field, detail) => {
    // Arrange
    const before = await t.ports.options.get();
    // Act
    const res = await call(t.app, 'PATCH', SETTINGS, body);
    // Assert
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.field).toBe(field);
    expect(res.body.detail).toContain(detail);
    expect(await t.ports.options.get()).toEqual(before);
  });

  it('answers other methods with 405 and Allow, a query parameter and an empty body with 400', async () => {
    // Act
    const put = await call(t.app, 'PUT', SETTINGS, {});
    const query = await call(t.app, 'GET', `${SETTINGS}?version=2`);
    const empty = await call(t.app, 'PATCH', SETTINGS, '');
    // Assert
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, PATCH, HEAD');
    expect(query.status).toBe(400);
    expect(query.body.field).toBe('version');
    expect(empty.status).toBe(400);
    expect(empty.body.field).toBe('body');
  });
});

describe('an options record written before the settings had their own path', () => {
  let t: CfsTestApp;
  beforeAll(async () => {
    t = await startCfsTestApp();
    // What the old code stored after `PATCH /v3/options` with its own settings and spec options, and `PATCH /v2/options` with a default playbook:
    // one flat record of v3 names, written through the same adapter.
    await t.ports.options.update(() => ({
      session_ttl: '3d',
      default_page_size: 50,
      debug_wait_time: 120,
      batch_size: 7,
      default_playbook: 'site.yml',
      image_wait_timeout: 600,
      image_poll_interval: 5,
      squashfs_compressor: 'xz',
      squashfs_compression_level: null,
      clone_url_schemes: ['https'],
    }));
  });
  afterAll(() => t.close());

  it('is read as the CFS options of each version and the settings, each answer in its own schema', async () => {
    // Act
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/options');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/options');
    const settings = await call(t.app, 'GET', SETTINGS);
    // Assert
    expect(v3.body).toEqual({
      session_ttl: '3d',
      default_page_size: 50,
      debug_wait_time: 120,
      batch_size: 7,
      default_playbook: 'site.yml',
      default_ansible_config: 'cfs-default-ansible-cfg',
      include_ara_links: false,
    });
    expect(v2.body).toEqual({ sessionTTL: '3d', batchSize: 7, defaultPlaybook: 'site.yml', defaultAnsibleConfig: 'cfs-default-ansible-cfg' });
    expect(settings.body).toEqual({ image_wait_timeout: 600, image_poll_interval: 5, squashfs_compressor: 'xz', squashfs_compression_level: null, clone_url_schemes: ['https'], layer_cache: true, layer_cache_max_age_seconds: 604800, layer_cache_max_bytes: null });
    expect(await cfsResponseErrors('get', '/v3/options', 200, v3.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/options', 200, v2.body)).toBeUndefined();
  });

  it('keeps acting on the workflow: the stored image wait, poll, compression and schemes, TTL and debug wait', async () => {
    // Arrange
    const settings = settingsReader(t.ports.options, { ...DEFAULT_WORKFLOW_SETTINGS, allowedCloneSchemes: ['https', 'ssh', 'file'] });
    // Act
    const read = await settings();
    // Assert
    expect(read).toMatchObject({ imageWaitTimeoutSeconds: 600, imagePollIntervalSeconds: 5, squashfs: { compressor: 'xz' }, allowedCloneSchemes: ['https'], debugWaitSeconds: 120, sessionTtlSeconds: 3 * 86_400 });
  });
});

describe('options and settings in the served OpenAPI document', () => {
  let t: CfsTestApp;
  beforeAll(async () => {
    t = await startCfsTestApp();
  });
  afterAll(() => t.close());

  it('names exactly the upstream V3Options and V2Options properties, closed as upstream, and the settings apart, each answer valid against it', async () => {
    // Arrange
    const document = (await call(t.app, 'GET', OPENAPI_PATH)).body;
    const api = (await SwaggerParser.dereference(structuredClone(document))) as Json;
    const upstream = loadContract('cfs-contract.json').components.schemas;
    const names = (schema: Json) => Object.keys(schema.properties).sort();
    const validate = (path: string, method: string, body: unknown) =>
      new OpenAPIResponseValidator({ responses: api.paths[path][method].responses, components: api.components }).validateResponse(200, body);
    // Act
    const v3 = await call(t.app, 'PATCH', '/apis/cfs/v3/options', { batch_size: 3 });
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/options');
    const settings = await call(t.app, 'PATCH', SETTINGS, { image_poll_interval: 9 });
    // Assert
    const schemas = document.components.schemas;
    expect(names(schemas.V3Options)).toEqual(names(upstream.V3Options!));
    expect(names(schemas.V2Options)).toEqual(names(upstream.V2Options!));
    expect(upstream.V3Options!.additionalProperties).toBe(false);
    for (const name of ['V3Options', 'V2Options', 'V3OptionsUpdate', 'V2OptionsUpdate', 'ProductSettings', 'ProductSettingsUpdate']) expect(schemas[name].additionalProperties, name).toBe(false);
    expect(names(schemas.ProductSettingsUpdate)).toEqual(['clone_url_schemes', 'image_poll_interval', 'image_wait_timeout', 'layer_cache', 'layer_cache_max_age_seconds', 'layer_cache_max_bytes', 'squashfs_compression_level', 'squashfs_compressor']);
    expect(Object.keys(document.paths[SETTINGS]).sort()).toEqual(['get', 'patch']);
    expect(validate('/apis/cfs/v3/options', 'patch', v3.body)).toBeUndefined();
    expect(validate('/apis/cfs/v2/options', 'get', v2.body)).toBeUndefined();
    expect(validate(SETTINGS, 'patch', settings.body)).toBeUndefined();
    expect(validate(SETTINGS, 'get', { ...settings.body, session_ttl: '7d' })).toBeDefined();
  });
});
