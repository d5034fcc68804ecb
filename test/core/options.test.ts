import { describe, expect, it } from 'vitest';
import { getOptions, getSettings, patchOptions, patchSettings } from '../../functions/core/options/options-use-cases.ts';
import { optionDefaultsFrom, secondsToAge, settingsReader, type OptionDrivenSettings } from '../../functions/core/options/workflow-settings.ts';
import { validateImages } from '../../functions/steps/validate-images.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../functions/steps/step-ports.ts';
import { MemoryOptions } from '../helpers/cfs-fakes.ts';
import { fakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const IMG = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
/** A deployment's settings, with the debug hold and retention defaults the embedded runtime has. */
const BASE = { ...DEFAULT_WORKFLOW_SETTINGS, debugWaitSeconds: 3600, sessionTtlSeconds: 7 * 86_400 };

function ports(base: OptionDrivenSettings = BASE) {
  return { options: new MemoryOptions(optionDefaultsFrom(base)) };
}

describe('the CFS options', () => {
  it('answers the acting CFS options with the deployment defaults and the served facts, v2 only what V2Options has, the settings apart', async () => {
    // Act
    const v3 = await getOptions(ports(), 'v3');
    const v2 = await getOptions(ports(), 'v2');
    const settings = await getSettings(ports());
    // Assert
    expect(v3).toEqual({ session_ttl: '7d', debug_wait_time: 3600, default_page_size: 1000, default_ansible_config: 'cfs-default-ansible-cfg', include_ara_links: false });
    expect(v2).toEqual({ sessionTTL: '7d', defaultAnsibleConfig: 'cfs-default-ansible-cfg' });
    expect(settings).toEqual({ image_wait_timeout: 3600, image_poll_interval: 30, squashfs_compressor: 'source', squashfs_compression_level: null, clone_url_schemes: ['https', 'ssh', 'file'], layer_cache: true, layer_cache_max_age_seconds: 604800, layer_cache_max_bytes: null });
  });

  it('sets only the options a PATCH names and keeps the others, in v3 and v2 spelling, and the settings through their own PATCH', async () => {
    // Arrange
    const p = ports();
    // Act
    await patchOptions(p, { session_ttl: '3d', default_page_size: 50 }, 'v3');
    const answer = await patchOptions(p, { sessionTTL: '12h', batcherDisable: true }, 'v2');
    const settings = await patchSettings(p, { image_wait_timeout: 120 });
    // Assert
    expect(answer).toEqual({ sessionTTL: '12h', batcherDisable: true, defaultAnsibleConfig: 'cfs-default-ansible-cfg' });
    expect(settings).toMatchObject({ image_wait_timeout: 120, image_poll_interval: 30 });
    expect(await getOptions(p, 'v3')).toMatchObject({ session_ttl: '12h', default_page_size: 50, batcher_disable: true });
    expect(await p.options.get()).toEqual({ session_ttl: '12h', default_page_size: 50, image_wait_timeout: 120, batcher_disable: true });
  });

  it.each([
    [{ colour: 'blue' }, 'v3', 'colour: unknown option; the options are hardware_sync_interval, batcher_check_interval'],
    [{ session_ttl: '1y' }, 'v3', 'session_ttl: must be a number followed by m, h, d or w'],
    [{ default_page_size: 0 }, 'v3', 'default_page_size: must be at least 1'],
    [{ debug_wait_time: 1.5 }, 'v3', 'debug_wait_time: must be an integer'],
    [{ squashfs_compressor: 'gzip' }, 'v3', "squashfs_compressor: not a CFS option: this product's own settings are set with PATCH /apis/cfs-image/v1/settings (cfs settings update) as squashfs_compressor"],
    [{ imageWaitTimeout: 60 }, 'v2', "imageWaitTimeout: not a CFS option: this product's own settings are set with PATCH /apis/cfs-image/v1/settings (cfs settings update) as image_wait_timeout"],
    [{ debugWaitTime: 60 }, 'v2', 'debugWaitTime: not a v2 option (CFS v2 has none of that name): set debug_wait_time with PATCH /apis/cfs/v3/options'],
    [{ includeAraLinks: false }, 'v2', 'includeAraLinks: not a v2 option'],
    [{ default_playbook: 'site.yml' }, 'v3', 'default_playbook: is read-only in v3'],
    [{ include_ara_links: true }, 'v3', 'include_ara_links: must be false: there is no ARA server here'],
    [{ default_ansible_config: 'my-cfg' }, 'v3', "default_ansible_config: only 'cfs-default-ansible-cfg' is served"],
    [{ additional_inventory_url: 'https://git.example/inv.git' }, 'v3', 'additional_inventory_url: must be empty'],
    [{ logging_level: 'TRACE' }, 'v3', 'logging_level: must be one of DEBUG, INFO, WARNING, ERROR'],
    [{ session_ttl: '1d' }, 'v2', 'session_ttl: unknown option; v2 spells it sessionTTL'],
    [{ batchSize: 0 }, 'v2', 'batchSize: must be at least 1'],
  ] as const)('refuses %j on %s with a 400 naming the option', async (body, version, message) => {
    // Arrange
    const p = ports();
    // Act
    const refused = await patchOptions(p, body, version).catch((error: Error) => error);
    // Assert
    expect(refused).toMatchObject({ name: 'ValidationError' });
    expect((refused as Error).message).toContain(message);
    expect(await p.options.get()).toEqual({});
  });

  it('stores the spec options of parts this product does not have, and v2 default playbook', async () => {
    // Arrange
    const p = ports();
    // Act
    const answer = await patchOptions(p, { batchSize: 120, loggingLevel: 'DEBUG', defaultPlaybook: 'site.yml', additionalInventoryUrl: '' }, 'v2');
    const v3 = await getOptions(p, 'v3');
    // Assert
    expect(answer).toMatchObject({ batchSize: 120, loggingLevel: 'DEBUG', defaultPlaybook: 'site.yml' });
    expect(v3).toMatchObject({ batch_size: 120, logging_level: 'DEBUG', default_playbook: 'site.yml', additional_inventory_url: '' });
  });

  it.each([
    [{ squashfs_compressor: 'brotli' }, 'squashfs_compressor: must be one of source, gzip, xz, lzo, lz4, zstd'],
    [{ image_poll_interval: 0 }, 'image_poll_interval: must be at least 1'],
    [{ clone_url_schemes: [] }, 'clone_url_schemes: must name at least one scheme'],
    [{ default_page_size: 10 }, 'default_page_size: a CFS option, not a setting of this product: set it with PATCH /apis/cfs/v3/options'],
    [{ sessionTTL: '1d' }, 'sessionTTL: a CFS option, not a setting of this product'],
    [{ colour: 'blue' }, 'colour: unknown setting; the settings are image_wait_timeout, image_poll_interval, squashfs_compressor, squashfs_compression_level, clone_url_schemes, layer_cache, layer_cache_max_age_seconds, layer_cache_max_bytes'],
  ] as const)('refuses the setting %j with a 400 naming it', async (body, message) => {
    // Arrange
    const p = ports();
    // Act
    const refused = await patchSettings(p, body).catch((error: Error) => error);
    // Assert
    expect(refused).toMatchObject({ name: 'ValidationError' });
    expect((refused as Error).message).toContain(message);
    expect(await p.options.get()).toEqual({});
  });

  it('checks the compression level against the compressor in force', async () => {
    // Arrange
    const p = ports();
    // Act
    const gzipTooHigh = await patchSettings(p, { squashfs_compressor: 'gzip', squashfs_compression_level: 12 }).catch((e: Error) => e);
    const zstd = await patchSettings(p, { squashfs_compressor: 'zstd', squashfs_compression_level: 19 });
    const xzKeepsLevel = await patchSettings(p, { squashfs_compressor: 'xz' }).catch((e: Error) => e);
    const xz = await patchSettings(p, { squashfs_compressor: 'xz', squashfs_compression_level: null });
    // Assert
    expect((gzipTooHigh as Error).message).toBe('squashfs_compression_level: must be from 1 to 9 for gzip');
    expect(zstd).toMatchObject({ squashfs_compressor: 'zstd', squashfs_compression_level: 19 });
    expect((xzKeepsLevel as Error).message).toBe('squashfs_compression_level: must be null: mksquashfs takes no compression level for xz');
    expect(xz).toMatchObject({ squashfs_compressor: 'xz', squashfs_compression_level: null });
  });

  it('allows narrowing the clone URL schemes, never widening them past the deployment', async () => {
    // Arrange
    const p = ports({ ...BASE, allowedCloneSchemes: ['https', 'ssh'] });
    // Act
    const narrowed = await patchSettings(p, { clone_url_schemes: ['https'] });
    const widened = await patchSettings(p, { clone_url_schemes: ['https', 'file'] }).catch((e: Error) => e);
    // Assert
    expect(narrowed).toMatchObject({ clone_url_schemes: ['https'] });
    expect((widened as Error).message).toBe('clone_url_schemes: file not supported by this deployment (it supports https, ssh)');
  });

  it('writes seconds as the largest whole age unit', () => {
    // Act / Assert
    expect([0, 59, 60, 5400, 86_400, 7 * 86_400, 10 * 86_400].map(secondsToAge)).toEqual(['', '1m', '1m', '90m', '1d', '7d', '10d']);
  });
});

describe('options driving the workflow', () => {
  it('gives the steps the settings in force at each read: defaults first, a PATCH at the next step', async () => {
    // Arrange
    const p = ports();
    const settings = settingsReader(p.options, { ...BASE, imageWaitTimeoutSeconds: 9 });
    // Act
    const before = await settings();
    await patchSettings(p, { image_wait_timeout: 77, image_poll_interval: 7, squashfs_compressor: 'gzip', squashfs_compression_level: 1, clone_url_schemes: ['https'] });
    await patchOptions(p, { session_ttl: '', debug_wait_time: 0 }, 'v3');
    const after = await settings();
    // Assert
    expect(before).toMatchObject({ imagePollIntervalSeconds: 30, squashfs: { compressor: 'source' }, allowedCloneSchemes: ['https', 'ssh', 'file'], debugWaitSeconds: 3600, sessionTtlSeconds: 604_800 });
    expect(after).toEqual({
      ...BASE,
      imageWaitTimeoutSeconds: 77,
      imagePollIntervalSeconds: 7,
      squashfs: { compressor: 'gzip', level: 1 },
      allowedCloneSchemes: ['https'],
      debugWaitSeconds: 0,
      sessionTtlSeconds: 0,
    });
  });

  it('makes the image wait step poll at the image_poll_interval and fail past the image_wait_timeout set through the settings', async () => {
    // Arrange
    const step = fakeStepPorts();
    const p = ports();
    step.settings = settingsReader(p.options, BASE);
    await step.sessions.create(pendingSession('waiting', { Compute: [IMG] }));
    try {
      await patchSettings(p, { image_poll_interval: 4, image_wait_timeout: 600 });
      // Act
      const waiting = await validateImages(step, { session: 'waiting' });
      await patchSettings(p, { image_wait_timeout: 60 });
      step.setNow('2026-11-26T10:05:00Z');
      const timedOut = await validateImages(step, { session: 'waiting' }).catch((e: Error) => e);
      // Assert
      expect(waiting).toMatchObject({ ready: false, missing: [IMG], poll_seconds: 4 });
      expect(timedOut).toMatchObject({ name: 'ImageWaitTimeoutError' });
      expect((timedOut as Error).message).toContain('within the image wait timeout of 60s');
    } finally {
      step.dispose();
    }
  });
});
