import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { ApiClient } from '../../functions/cli/api-client.ts';
import { ImagesApi } from '../../functions/cli/images/images-api.ts';
import { importImage } from '../../functions/cli/images/import-image.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { bearer, cliEnv } from '../helpers/api-token.ts';
import { cfs, tempDataDir } from './cli-harness.ts';

let data: ReturnType<typeof tempDataDir>;
let runtime: EmbeddedRuntime;
let url: string;
let tree: string;

/** The image ids registered, and every artifact file stored (to show failures leave nothing). */
async function registry(): Promise<{ ids: string[]; files: string[] }> {
  const ids = (await runtime.ports.images.list()).map((i) => i.id);
  const files = await runtime.ports.artifacts.list('boot-images/');
  return { ids, files };
}

beforeAll(async () => {
  data = tempDataDir();
  runtime = await startEmbeddedRuntime({ dataDir: join(data.dir, 'server'), port: 0 });
  url = runtime.url;
  tree = join(data.dir, 'tree');
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc', 'hostname'), 'small\n');
  writeFileSync(join(data.dir, 'vmlinuz'), 'kernel bytes');
});
afterAll(async () => {
  await runtime.close();
  data.dispose();
});

describe('cfs images', () => {
  it('imports a root directory with a kernel, prints the record, and lists it for the jq check', async () => {
    // Act
    const imported = await cfs(runtime, 'images', 'import', '--name', 'small', '--rootfs', tree, '--kernel', join(data.dir, 'vmlinuz'), '--format', 'json');
    const record = JSON.parse(imported.out);
    const listed = await cfs(runtime, 'images', 'list', '--format', 'json');
    const described = await cfs(runtime, 'images', 'describe', record.id);
    // Assert
    expect(imported.code).toBe(0);
    expect(record).toMatchObject({ name: 'small', arch: 'x86_64', link: { path: `s3://boot-images/${record.id}/manifest.json` } });
    expect(JSON.parse(listed.out).some((i: { id: string }) => i.id === record.id)).toBe(true);
    expect(described.out).toContain(`Image ${record.id}: small`);
    expect((await runtime.ports.artifacts.list(`boot-images/${record.id}/`)).sort()).toEqual(
      [`boot-images/${record.id}/kernel`, `boot-images/${record.id}/manifest.json`, `boot-images/${record.id}/rootfs`].sort(),
    );
  });

  it('downloads an artifact verified against the manifest, and refuses stored bytes that changed', async () => {
    // Arrange
    const { out } = await cfs(runtime, 'images', 'import', '--name', 'dl', '--rootfs', tree, '--format', 'json');
    const id = JSON.parse(out).id as string;
    const output = join(data.dir, 'dl.squashfs');
    // Act
    const good = await cfs(runtime, 'images', 'download', id, '-o', output);
    const listing = execFileSync('unsquashfs', ['-l', output]).toString();
    writeFileSync((runtime.ports.artifacts as FsArtifactStore).pathOf(`boot-images/${id}/rootfs`), 'tampered');
    const bad = await cfs(runtime, 'images', 'download', id, '-o', join(data.dir, 'bad.squashfs'));
    // Assert
    expect(good.code).toBe(0);
    expect(listing).toContain('squashfs-root/etc/hostname');
    expect(bad.code).toBe(1);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/^Error: downloaded size 8 does not match the manifest's \d+; nothing was written/);
    expect(existsSync(join(data.dir, 'bad.squashfs'))).toBe(false);
    expect(readdirSync(data.dir).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  it.each([
    [['--name', '', '--rootfs', 'TREE'], 'Error: --name: name must not be empty'],
    [['--name', 'x', '--arch', 'sparc', '--rootfs', 'TREE'], "Error: --arch: arch must be one of x86_64, aarch64, not 'sparc'"],
    [['--name', 'x', '--rootfs', '/does/not/exist'], 'Error: --rootfs /does/not/exist does not exist'],
    [['--name', 'x', '--rootfs', 'TREE', '--squashfs', 'TREE'], 'Error: give exactly one of --rootfs DIR or --squashfs FILE'],
    [['--name', 'x', '--rootfs', 'TREE', '--kernel', '/no/kernel'], 'Error: --kernel /no/kernel does not exist'],
    [['--name', 'x', '--rootfs', 'TREE', '--compression-level', '12'], 'Error: gzip compression level must be 1-9'],
  ])('refuses import %j with one clear line and registers nothing', async (args, message) => {
    // Arrange
    const before = await registry();
    // Act
    const result = await cfs(runtime, 'images', 'import', ...args.map((a) => (a === 'TREE' ? tree : a)));
    // Assert
    expect(result.code).toBe(1);
    expect(result.err.trim().split('\n').pop()).toBe(message);
    expect(result.err.split('\n').filter((line) => line.startsWith('Error:'))).toHaveLength(1);
    expect(await registry()).toEqual(before);
  });

  it('deletes the record and the artifacts it uploaded when an upload is refused midway', async () => {
    // Arrange: the kernel's upload URL is spoiled, so the rootfs is stored but the kernel refused
    const before = await registry();
    const api = new ImagesApi(new ApiClient({ env: cliEnv(runtime) }));
    const realUploadUrl = api.uploadUrl.bind(api);
    let uploads = 0;
    api.uploadUrl = async (id, artifact) => {
      const signed = await realUploadUrl(id, artifact);
      return uploads++ === 0 ? signed : signed.replace(/signature=[0-9a-f]{4}/, 'signature=0000');
    };
    // Act
    const attempt = importImage(api, { name: 'half', arch: 'x86_64', rootfs: tree, kernel: join(data.dir, 'vmlinuz') });
    // Assert
    await expect(attempt).rejects.toThrow(/upload of .*vmlinuz refused: Forbidden: the artifact URL signature is not valid/);
    expect(uploads).toBe(2);
    expect(await registry()).toEqual(before);
  });

  it('refuses to delete an image a running session targets unless forced', async () => {
    // Arrange
    const { out } = await cfs(runtime, 'images', 'import', '--name', 'busy', '--rootfs', tree, '--format', 'json');
    const id = JSON.parse(out).id as string;
    const session: SessionRecord = {
      name: 'busy-session',
      configuration: { name: 'c', limit: '' },
      ansible: { config: '', limit: '', verbosity: 0, passthrough: '' },
      target: { definition: 'image', groups: [{ name: 'Compute', members: [id] }], image_map: [] },
      tags: {},
      debug_on_failure: false,
      status: { session: { status: 'running', succeeded: 'none', start_time: '2026-01-01T00:00:00Z' }, artifacts: [], layers: [] },
    };
    await runtime.ports.sessions.create(session);
    // Act
    const refused = await cfs(runtime, 'images', 'delete', id);
    const forced = await cfs(runtime, 'images', 'delete', id, '--force');
    // Assert
    expect(refused.code).toBe(2);
    expect(refused.err.trim()).toBe(`Error: Conflict: image ${id} is a target of pending or running session(s) busy-session; wait for them to finish or delete with force`);
    expect(forced.code).toBe(0);
    expect((await cfs(runtime, 'images', 'describe', id)).code).toBe(2);
    expect(await runtime.ports.artifacts.list(`boot-images/${id}/`)).toEqual([]);
  });

  it('builds and registers the sample image with python3, sh, sleep, /tmp 1777 and a dummy kernel and initrd', async () => {
    // Act
    const built = await cfs(runtime, 'images', 'build-sample', '--name', 'sample', '--format', 'json');
    const record = JSON.parse(built.out);
    const manifest = (await (await fetch(`${url}/apis/ims/v3/images/${record.id}/manifest`, { headers: bearer(runtime) })).json()) as { artifacts: { type: string }[] };
    const output = join(data.dir, 'sample.squashfs');
    await cfs(runtime, 'images', 'download', record.id, '-o', output);
    const listing = execFileSync('unsquashfs', ['-lls', output], { maxBuffer: 64 << 20 }).toString();
    // Assert
    expect(built.code).toBe(0);
    expect(record).toMatchObject({ name: 'sample', metadata: { sample: 'true' } });
    expect(manifest.artifacts.map((a) => a.type)).toEqual([
      'application/vnd.cray.image.rootfs.squashfs',
      'application/vnd.cray.image.kernel',
      'application/vnd.cray.image.initrd',
    ]);
    expect(listing).toMatch(/squashfs-root\/usr\/bin\/python3 -> python3\.\d+/);
    expect(listing).toMatch(/squashfs-root\/usr\/bin\/sh -> dash/);
    expect(listing).toMatch(/squashfs-root\/usr\/bin\/sleep\n/);
    expect(listing).toMatch(/drwxrwxrwt root\/root\s+\d+ [\d-]+ [\d:]+ squashfs-root\/tmp\n/);
    expect(listing).toMatch(/squashfs-root\/etc\/passwd\n/);
  });

  it('lists images page by page, following the server\'s Link headers, with the listing\'s filters', async () => {
    // Arrange
    for (const name of ['paged-a', 'paged-b', 'paged-c', 'other-d']) await new ImagesApi(new ApiClient({ env: cliEnv(runtime) })).create({ name, arch: 'x86_64' });
    // Act
    const all = await cfs(runtime, 'images', 'list', '--name-prefix', 'paged-', '--limit', '1', '--format', 'json');
    const capped = await cfs(runtime, 'images', 'list', '--name-prefix', 'paged-', '--limit', '1', '--pages', '2', '--format', 'json');
    const globbed = await cfs(runtime, 'images', 'list', '--name-glob', '*-d', '--format', 'json');
    const refused = await cfs(runtime, 'images', 'list', '--arch', 'sparc');
    // Assert
    expect(all.code).toBe(0);
    expect(JSON.parse(all.out).map((i: { name: string }) => i.name)).toEqual(['paged-a', 'paged-b', 'paged-c']);
    expect(JSON.parse(capped.out).map((i: { name: string }) => i.name)).toEqual(['paged-a', 'paged-b']);
    expect(JSON.parse(globbed.out).map((i: { name: string }) => i.name)).toEqual(['other-d']);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain('arch');
  });
});
