import { describe, expect, it } from 'vitest';
import { getOptions, patchOptions } from '../../functions/core/options/options-use-cases.ts';
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
  it('answers every product option with the deployment defaults, and the served facts', async () => {
    // Act
    const v3 = await getOptions(ports(), 'v3');
    const v2 = await getOptions(ports(), 'v2');
    // Assert
    expect(v3).toEqual({
      session_ttl: '7d',
      debug_wait_time: 3600,
      default_page_size: 1000,
      image_wait_timeout: 3600,
      image_poll_interval: 30,
      squashfs_compressor: 'source',
      squashfs_compression_level: null,
      clone_url_schemes: ['https', 'ssh', 'file'],
      default_ansible_config: 'cfs-default-ansible-cfg',
      include_ara_links: false,
    });
    expect(v2).toMatchObject({ sessionTTL: '7d', defaultPageSize: 1000, imageWaitTimeout: 3600, cloneUrlSchemes: ['https', 'ssh', 'file'], defaultAnsibleConfig: 'cfs-default-ansible-cfg' });
  });

  it('sets only the options a PATCH names and keeps the others, in v3 and v2 spelling', async () => {
    // Arrange
    const p = ports();
    // Act
    await patchOptions(p, { session_ttl: '3d', default_page_size: 50 }, 'v3');
    const answer = await patchOptions(p, { imageWaitTimeout: 120, sessionTTL: '12h', batcherDisable: true }, 'v2');
    // Assert
    expect(answer).toMatchObject({ sessionTTL: '12h', defaultPageSize: 50, imageWaitTimeout: 120, imagePollInterval: 30, batcherDisable: true });
    expect(await p.options.get()).toEqual({ session_ttl: '12h', default_page_size: 50, image_wait_timeout: 120, batcher_disable: true });
  });

  it.each([
    [{ colour: 'blue' }, 'v3', 'colour: unknown option; the options are session_ttl'],
    [{ session_ttl: '1y' }, 'v3', 'session_ttl: must be a number followed by m, h, d or w'],
    [{ default_page_size: 0 }, 'v3', 'default_page_size: must be at least 1'],
    [{ image_poll_interval: 1.5 }, 'v3', 'image_poll_interval: must be an integer'],
    [{ squashfs_compressor: 'brotli' }, 'v3', 'squashfs_compressor: must be one of source, gzip, xz, lzo, lz4, zstd'],
    [{ default_playbook: 'site.yml' }, 'v3', 'default_playbook: is read-only in v3'],
    [{ include_ara_links: true }, 'v3', 'include_ara_links: must be false: there is no ARA server here'],
    [{ default_ansible_config: 'my-cfg' }, 'v3', "default_ansible_config: only 'cfs-default-ansible-cfg' is served"],
    [{ additional_inventory_url: 'https://git.example/inv.git' }, 'v3', 'additional_inventory_url: must be empty'],
    [{ logging_level: 'TRACE' }, 'v3', 'logging_level: must be one of DEBUG, INFO, WARNING, ERROR'],
    [{ session_ttl: '1d' }, 'v2', 'session_ttl: unknown option'],
    [{ defaultPageSize: -1 }, 'v2', 'defaultPageSize: must be at least 1'],
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

  it('checks the compression level against the compressor in force', async () => {
    // Arrange
    const p = ports();
    // Act
    const gzipTooHigh = await patchOptions(p, { squashfs_compressor: 'gzip', squashfs_compression_level: 12 }, 'v3').catch((e: Error) => e);
    const zstd = await patchOptions(p, { squashfs_compressor: 'zstd', squashfs_compression_level: 19 }, 'v3');
    const xzKeepsLevel = await patchOptions(p, { squashfs_compressor: 'xz' }, 'v3').catch((e: Error) => e);
    const xz = await patchOptions(p, { squashfs_compressor: 'xz', squashfs_compression_level: null }, 'v3');
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
    const narrowed = await patchOptions(p, { clone_url_schemes: ['https'] }, 'v3');
    const widened = await patchOptions(p, { clone_url_schemes: ['https', 'file'] }, 'v3').catch((e: Error) => e);
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
    await patchOptions(p, { image_wait_timeout: 77, image_poll_interval: 7, squashfs_compressor: 'gzip', squashfs_compression_level: 1, clone_url_schemes: ['https'], session_ttl: '', debug_wait_time: 0 }, 'v3');
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

  it('makes the image wait step poll at the image_poll_interval and fail past the image_wait_timeout set by PATCH', async () => {
    // Arrange
    const step = fakeStepPorts();
    const p = ports();
    step.settings = settingsReader(p.options, BASE);
    await step.sessions.create(pendingSession('waiting', { Compute: [IMG] }));
    try {
      await patchOptions(p, { image_poll_interval: 4, image_wait_timeout: 600 }, 'v3');
      // Act
      const waiting = await validateImages(step, { session: 'waiting' });
      await patchOptions(p, { image_wait_timeout: 60 }, 'v3');
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
