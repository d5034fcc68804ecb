import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { listedSession } from '../helpers/listing-seed.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';

describe('cfs options and cfs settings', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  beforeAll(async () => {
    data = tempDataDir();
    ({ runtime } = await startServer(data.dir));
    for (const name of ['a', 'b', 'c']) await runtime.ports.sessions.create(listedSession(`listed-${name}`));
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
  });

  it('describes every CFS option in force, one per line, and as the API JSON, without the settings', async () => {
    // Act
    const human = await cfs(runtime, 'options', 'describe');
    const json = await cfs(runtime, 'options', 'describe', '--format', 'json');
    const v2 = await cfs(runtime, 'options', 'describe', '--api-version', '2', '--format', 'json');
    // Assert
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^default_page_size\s+1000$/m);
    expect(human.out).toMatch(/^session_ttl\s+7d$/m);
    expect(human.out).not.toContain('image_wait_timeout');
    expect(JSON.parse(json.out)).toEqual({ session_ttl: '7d', debug_wait_time: 3600, default_page_size: 1000, default_ansible_config: 'cfs-default-ansible-cfg', include_ara_links: false });
    expect(JSON.parse(v2.out)).toEqual({ sessionTTL: '7d', defaultAnsibleConfig: 'cfs-default-ansible-cfg' });
  });

  it('describes every setting in force, one per line, and as the API JSON', async () => {
    // Act
    const human = await cfs(runtime, 'settings', 'describe');
    const json = await cfs(runtime, 'settings', 'describe', '--format', 'json');
    // Assert
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^clone_url_schemes\s+https,ssh,file$/m);
    expect(human.out).toMatch(/^squashfs_compression_level\s+default$/m);
    expect(JSON.parse(json.out)).toEqual({ image_wait_timeout: 3600, image_poll_interval: 30, squashfs_compressor: 'source', squashfs_compression_level: null, clone_url_schemes: ['https', 'ssh', 'file'], layer_cache: true, layer_cache_max_age_seconds: 604800, layer_cache_max_bytes: null });
  });

  it('updates the options and the settings it is given, typed as the API takes them, and keeps the others', async () => {
    // Act
    const options = await cfs(runtime, 'options', 'update', '--debug-wait-time', '60', '--batcher-disable', 'True', '--format', 'json');
    const v2 = await cfs(runtime, 'options', 'update', '--api-version', '2', '--session-ttl', '2d', '--format', 'json');
    const settings = await cfs(runtime, 'settings', 'update', '--image-poll-interval', '10', '--clone-url-schemes', 'https,file', '--squashfs-compressor', 'gzip', '--squashfs-compression-level', '1', '--format', 'json');
    const cleared = await cfs(runtime, 'settings', 'update', '--squashfs-compression-level', 'default', '--format', 'json');
    // Assert
    expect(options.code).toBe(0);
    expect(JSON.parse(options.out)).toMatchObject({ debug_wait_time: 60, batcher_disable: true, default_page_size: 1000 });
    expect(JSON.parse(v2.out)).toEqual({ sessionTTL: '2d', batcherDisable: true, defaultAnsibleConfig: 'cfs-default-ansible-cfg' });
    expect(settings.code).toBe(0);
    expect(JSON.parse(settings.out)).toEqual({ image_wait_timeout: 3600, image_poll_interval: 10, squashfs_compressor: 'gzip', squashfs_compression_level: 1, clone_url_schemes: ['https', 'file'], layer_cache: true, layer_cache_max_age_seconds: 604800, layer_cache_max_bytes: null });
    expect(JSON.parse(cleared.out)).toMatchObject({ squashfs_compressor: 'gzip', squashfs_compression_level: null });
    expect(await runtime.ports.options.get()).toMatchObject({ debug_wait_time: 60, image_poll_interval: 10, session_ttl: '2d', squashfs_compression_level: null });
  });

  it('updates the layer cache settings from flags, a size cap of default being the deployment cap', async () => {
    // Act
    const set = await cfs(runtime, 'settings', 'update', '--layer-cache', 'false', '--layer-cache-max-age-seconds', '86400', '--layer-cache-max-bytes', '2000000000', '--format', 'json');
    const reset = await cfs(runtime, 'settings', 'update', '--layer-cache', 'true', '--layer-cache-max-bytes', 'default');
    // Assert
    expect(set.code).toBe(0);
    expect(JSON.parse(set.out)).toMatchObject({ layer_cache: false, layer_cache_max_age_seconds: 86400, layer_cache_max_bytes: 2000000000 });
    expect(reset.code).toBe(0);
    expect(reset.out).toMatch(/^layer_cache\s+true$/m);
    expect(reset.out).toMatch(/^layer_cache_max_bytes\s+default$/m);
  });

  it('pages listings at the default_page_size it sets', async () => {
    // Act
    await cfs(runtime, 'options', 'update', '--default-page-size', '2');
    const page = await cfs(runtime, 'sessions', 'list');
    // Assert
    expect(page.out).toContain('More sessions match: add --after-id listed-b for the next page.');
  });

  it('refuses a value the CLI cannot read, or a flag of the other command or version, with exit 1, and one the API refuses with exit 2, as cray shows errors', async () => {
    // Act
    const nothing = await cfs(runtime, 'options', 'update');
    const nothingSet = await cfs(runtime, 'settings', 'update');
    const notInteger = await cfs(runtime, 'settings', 'update', '--image-wait-timeout', 'an hour');
    const moved = await cfs(runtime, 'options', 'update', '--image-wait-timeout', '1800');
    const v3Only = await cfs(runtime, 'options', 'update', '--api-version', '2', '--default-page-size', '5');
    const refused = await cfs(runtime, 'settings', 'update', '--squashfs-compressor', 'brotli');
    // Assert
    expect(nothing.code).toBe(1);
    expect(nothing.err).toMatch(/^Error: give at least one option to set \(--session-ttl, /);
    expect(nothingSet.code).toBe(1);
    expect(nothingSet.err).toMatch(/^Error: give at least one setting to set \(--image-wait-timeout, /);
    expect(notInteger.code).toBe(1);
    expect(notInteger.err).toBe("Error: --image-wait-timeout takes an integer, not 'an hour'\n");
    expect(moved.code).toBe(1);
    expect(moved.err).toBe("Error: --image-wait-timeout is not a CFS option: it is this product's own setting, set with 'cfs settings update --image-wait-timeout'\n");
    expect(v3Only.code).toBe(1);
    expect(v3Only.err).toBe('Error: --default-page-size is a v3 option (CFS v2 has none of that name): leave out --api-version 2\n');
    expect(refused.code).toBe(2);
    expect(refused.err).toBe('Error: Bad Request: squashfs_compressor: must be one of source, gzip, xz, lzo, lz4, zstd\n');
  });

  it('lists the settings apart from the options in help, with no --api-version on settings', async () => {
    // Act
    const options = await cfs(runtime, 'options', 'update', '--help');
    const settings = await cfs(runtime, 'settings', 'update', '--help');
    // Assert
    expect(options.out).toContain('--session-ttl <value>');
    expect(options.out).not.toContain('--image-wait-timeout');
    expect(settings.out).toContain('--image-wait-timeout <value>');
    expect(settings.out).not.toContain('--api-version');
  });
});
