import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { listedSession } from '../helpers/listing-seed.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';

describe('cfs options', () => {
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

  it('describes every option in force, one per line, and as the API JSON', async () => {
    // Act
    const human = await cfs(runtime, 'options', 'describe');
    const json = await cfs(runtime, 'options', 'describe', '--format', 'json');
    // Assert
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^clone_url_schemes\s+https,ssh,file$/m);
    expect(human.out).toMatch(/^default_page_size\s+1000$/m);
    expect(human.out).toMatch(/^squashfs_compression_level\s+default$/m);
    expect(JSON.parse(json.out)).toMatchObject({ session_ttl: '7d', image_wait_timeout: 3600, image_poll_interval: 30 });
  });

  it('updates the options it is given, typed as the API takes them, and keeps the others', async () => {
    // Act
    const res = await cfs(runtime, 'options', 'update', '--image-poll-interval', '10', '--clone-url-schemes', 'https,file', '--squashfs-compressor', 'gzip', '--squashfs-compression-level', '1', '--batcher-disable', 'True', '--format', 'json');
    const v2 = await cfs(runtime, 'options', 'update', '--api-version', '2', '--session-ttl', '2d', '--squashfs-compression-level', 'default', '--format', 'json');
    // Assert
    expect(res.code).toBe(0);
    expect(JSON.parse(res.out)).toMatchObject({ image_poll_interval: 10, clone_url_schemes: ['https', 'file'], squashfs_compressor: 'gzip', squashfs_compression_level: 1, batcher_disable: true, image_wait_timeout: 3600 });
    expect(JSON.parse(v2.out)).toMatchObject({ sessionTTL: '2d', squashfsCompressionLevel: null, imagePollInterval: 10 });
    expect(await runtime.ports.options.get()).toMatchObject({ image_poll_interval: 10, session_ttl: '2d', squashfs_compression_level: null });
  });

  it('pages listings at the default_page_size it sets', async () => {
    // Act
    await cfs(runtime, 'options', 'update', '--default-page-size', '2');
    const page = await cfs(runtime, 'sessions', 'list');
    // Assert
    expect(page.out).toContain('More sessions match: add --after-id listed-b for the next page.');
  });

  it('refuses a value the CLI cannot read with exit 1, and one the API refuses with exit 2, as cray shows errors', async () => {
    // Act
    const nothing = await cfs(runtime, 'options', 'update');
    const notInteger = await cfs(runtime, 'options', 'update', '--image-wait-timeout', 'an hour');
    const refused = await cfs(runtime, 'options', 'update', '--squashfs-compressor', 'brotli');
    // Assert
    expect(nothing.code).toBe(1);
    expect(nothing.err).toMatch(/^Error: give at least one option to set \(--session-ttl, /);
    expect(notInteger.code).toBe(1);
    expect(notInteger.err).toBe("Error: --image-wait-timeout takes an integer, not 'an hour'\n");
    expect(refused.code).toBe(2);
    expect(refused.err).toBe('Error: Bad Request: squashfs_compressor: must be one of source, gzip, xz, lzo, lz4, zstd\n');
  });
});
