import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settingsReader } from '../../functions/core/options/workflow-settings.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../functions/steps/step-ports.ts';
import { call, startCfsTestApp, type CfsTestApp } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

/** The spec's own option fields of an answer (this product's extensions left out), to validate against V2/V3Options. */
const SPEC_V3 = ['hardware_sync_interval', 'batcher_check_interval', 'batch_size', 'batch_window', 'default_batcher_retry_policy', 'default_playbook', 'default_ansible_config', 'session_ttl', 'additional_inventory_url', 'additional_inventory_source', 'batcher_max_backoff', 'batcher_disable', 'batcher_pending_timeout', 'logging_level', 'default_page_size', 'debug_wait_time', 'include_ara_links'];
const SPEC_V2 = ['hardwareSyncInterval', 'batcherCheckInterval', 'batchSize', 'batchWindow', 'defaultBatcherRetryPolicy', 'defaultPlaybook', 'defaultAnsibleConfig', 'sessionTTL', 'additionalInventoryUrl', 'batcherMaxBackoff', 'batcherDisable', 'batcherPendingTimeout', 'loggingLevel'];
const specPart = (body: Record<string, unknown>, names: string[]) => Object.fromEntries(Object.entries(body).filter(([name]) => names.includes(name)));

describe('CFS options through the API (dynalite)', () => {
  let t: CfsTestApp;
  beforeAll(async () => {
    t = await startCfsTestApp();
  });
  afterAll(() => t.close());

  it('answers GET with every option in force, its spec fields valid against V3Options and V2Options', async () => {
    // Act
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/options');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/options');
    // Assert
    expect(v3.status).toBe(200);
    expect(v3.body).toMatchObject({ session_ttl: '7d', debug_wait_time: 3600, default_page_size: 1000, image_wait_timeout: 3600, image_poll_interval: 30, squashfs_compressor: 'source', clone_url_schemes: ['https', 'ssh', 'file'] });
    expect(v2.body).toMatchObject({ sessionTTL: '7d', defaultPageSize: 1000, imageWaitTimeout: 3600 });
    expect(await cfsResponseErrors('get', '/v3/options', 200, specPart(v3.body, SPEC_V3))).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/options', 200, specPart(v2.body, SPEC_V2))).toBeUndefined();
  });

  it('stores a PATCH, answers every option, and the workflow settings read from the same store follow it', async () => {
    // Arrange
    const settings = settingsReader(t.ports.options, { ...DEFAULT_WORKFLOW_SETTINGS, allowedCloneSchemes: ['https', 'ssh', 'file'] });
    // Act
    const v3 = await call(t.app, 'PATCH', '/apis/cfs/v3/options', { image_wait_timeout: 900, squashfs_compressor: 'zstd', squashfs_compression_level: 3 });
    const v2 = await call(t.app, 'PATCH', '/apis/cfs/v2/options', { imagePollInterval: 10, cloneUrlSchemes: ['https'] });
    const read = await call(t.app, 'GET', '/apis/cfs/v3/options');
    // Assert
    expect(v3.status).toBe(200);
    expect(v3.body).toMatchObject({ image_wait_timeout: 900, squashfs_compressor: 'zstd', squashfs_compression_level: 3, default_page_size: 1000 });
    expect(v2.body).toMatchObject({ imagePollInterval: 10, imageWaitTimeout: 900, cloneUrlSchemes: ['https'] });
    expect(read.body).toMatchObject({ image_wait_timeout: 900, image_poll_interval: 10, clone_url_schemes: ['https'] });
    expect(await settings()).toMatchObject({ imageWaitTimeoutSeconds: 900, imagePollIntervalSeconds: 10, squashfs: { compressor: 'zstd', level: 3 }, allowedCloneSchemes: ['https'] });
  });

  it.each([
    ['/apis/cfs/v3/options', { unknown_option: 1 }, 'unknown_option'],
    ['/apis/cfs/v2/options', { session_ttl: '1d' }, 'session_ttl'],
    ['/apis/cfs/v3/options', { include_ara_links: true }, 'include_ara_links'],
    ['/apis/cfs/v3/options', { clone_url_schemes: ['ext'] }, 'clone_url_schemes'],
  ])('answers PATCH %s %j with a 400 problem naming the option', async (path, body, field) => {
    // Act
    const res = await call(t.app, 'PATCH', path, body);
    // Assert
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.field).toBe(field);
    expect(await cfsResponseErrors('patch', '/v3/options', 400, res.body)).toBeUndefined();
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
