import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsArtifactStore, loadOrCreateSigningSecret } from '../../functions/adapters/local/fs-artifact-store.ts';

let root: string;
let store: FsArtifactStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'fs-store-'));
  store = new FsArtifactStore(join(root, 'artifacts'), { baseUrl: 'http://127.0.0.1:9/artifacts/' });
});
afterEach(async () => rm(root, { recursive: true, force: true }));

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('FsArtifactStore', () => {
  it('stores an object with its size, md5 and sha256 and reads, lists, heads and deletes it', async () => {
    // Act
    const stored = await store.put('boot-images/i/rootfs', Readable.from([Buffer.from('ab'), Buffer.from('c')]));
    // Assert
    expect(stored).toMatchObject({
      key: 'boot-images/i/rootfs',
      size: 3,
      md5: createHash('md5').update('abc').digest('hex'),
      sha256: createHash('sha256').update('abc').digest('hex'),
    });
    expect(await text(await store.get('boot-images/i/rootfs'))).toBe('abc');
    expect(await store.head('boot-images/i/rootfs')).toMatchObject({ size: 3 });
    expect(await store.list('boot-images/')).toEqual(['boot-images/i/rootfs']);
    await store.delete('boot-images/i/rootfs');
    expect(await store.head('boot-images/i/rootfs')).toBeUndefined();
    await expect(store.get('boot-images/i/rootfs')).rejects.toMatchObject({ name: 'NotFoundError' });
  });

  it('gives an object its md5 as ETag, as S3 does, unless the file changed behind the store', async () => {
    // Arrange
    const stored = await store.put('boot-images/e/rootfs', 'etag me');
    // Act
    const before = await store.head('boot-images/e/rootfs');
    await writeFile(store.pathOf('boot-images/e/rootfs'), 'changed');
    const after = await store.head('boot-images/e/rootfs');
    // Assert
    expect(before).toEqual({ size: 7, etag: stored.md5 });
    expect(after?.etag).toMatch(/^7-\d+$/);
    expect(await store.list('')).toEqual(['boot-images/e/rootfs']);
  });

  it('leaves no object and no partial file when the source fails midway', async () => {
    // Arrange
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1024));
        this.destroy(new Error('source broke'));
      },
    });
    // Act
    const attempt = store.put('boot-images/j/rootfs', failing);
    // Assert
    await expect(attempt).rejects.toThrow('source broke');
    expect(await store.head('boot-images/j/rootfs')).toBeUndefined();
    expect(await readdir(join(root, 'artifacts', 'boot-images', 'j'))).toEqual([]);
  });

  it.each(['../escape', 'boot-images/../../escape', '/absolute', 'a//b', '', 'a/%2e%2e/b', 'a/b c', '.etags/x', 'a/.hidden'])('refuses the key %j', async (key) => {
    // Act / Assert
    await expect(store.put(key, 'x')).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(store.uploadUrl(key, 60)).rejects.toMatchObject({ name: 'ValidationError' });
  });

  it('signs URLs bound to method, key and expiry', async () => {
    // Arrange
    const url = new URL(await store.uploadUrl('boot-images/i/rootfs', 60));
    const expires = url.searchParams.get('expires') ?? undefined;
    const signature = url.searchParams.get('signature') ?? undefined;
    // Act / Assert
    expect(url.origin + url.pathname).toBe('http://127.0.0.1:9/artifacts/boot-images/i/rootfs');
    expect(store.verifySignedRequest('PUT', 'boot-images/i/rootfs', expires, signature)).toBe('valid');
    expect(store.verifySignedRequest('GET', 'boot-images/i/rootfs', expires, signature)).toBe('invalid');
    expect(store.verifySignedRequest('PUT', 'boot-images/i/kernel', expires, signature)).toBe('invalid');
    expect(store.verifySignedRequest('PUT', 'boot-images/i/rootfs', String(Number(expires) + 1), signature)).toBe('invalid');
    expect(store.verifySignedRequest('PUT', 'boot-images/i/rootfs', expires, undefined)).toBe('invalid');
    expect(store.verifySignedRequest('PUT', 'boot-images/i/rootfs', expires, signature, (Number(expires) + 1) * 1000)).toBe('expired');
  });

  it('refuses URLs signed with another secret', async () => {
    // Arrange
    const other = new FsArtifactStore(join(root, 'artifacts'), { baseUrl: 'http://127.0.0.1:9/artifacts' });
    const url = new URL(await other.downloadUrl('boot-images/i/rootfs', 60));
    // Act
    const check = store.verifySignedRequest('GET', 'boot-images/i/rootfs', url.searchParams.get('expires') ?? undefined, url.searchParams.get('signature') ?? undefined);
    // Assert
    expect(check).toBe('invalid');
  });

  it('promotes a staged upload with one rename, answering its write-time md5 and sha256, and a later put to the staging key leaves the final key alone', async () => {
    // Arrange
    const staged = await store.put('boot-images/i/uploads/rootfs', 'registered bytes');
    // Act
    const promoted = await store.promote('boot-images/i/uploads/rootfs', 'boot-images/i/rootfs');
    await store.put('boot-images/i/uploads/rootfs', 'late bytes');
    // Assert
    expect(promoted).toEqual({ key: 'boot-images/i/rootfs', size: staged.size, etag: staged.md5, md5: staged.md5, sha256: staged.sha256 });
    expect(await text(await store.get('boot-images/i/rootfs'))).toBe('registered bytes');
    expect(await store.measured('boot-images/i/rootfs')).toMatchObject({ md5: staged.md5, sha256: staged.sha256 });
    expect(await store.promote('boot-images/i/missing', 'boot-images/i/kernel')).toBeUndefined();
  });

  it('measures a staged file changed behind the store instead of answering its stale record', async () => {
    // Arrange
    await store.put('boot-images/i/uploads/rootfs', 'what was put');
    await writeFile(store.pathOf('boot-images/i/uploads/rootfs'), 'what is there');
    // Act
    const promoted = await store.promote('boot-images/i/uploads/rootfs', 'boot-images/i/rootfs');
    // Assert
    expect(promoted).toMatchObject({
      size: 13,
      md5: createHash('md5').update('what is there').digest('hex'),
      sha256: createHash('sha256').update('what is there').digest('hex'),
    });
  });

  it('says clearly that it cannot hand out URLs before the server listens', async () => {
    // Arrange
    const unbound = new FsArtifactStore(join(root, 'artifacts'));
    // Act / Assert
    await expect(unbound.downloadUrl('boot-images/i/rootfs', 60)).rejects.toThrow('the artifact endpoint URL is not known yet');
  });
});

describe('FsArtifactStore removing a prefix', () => {
  it('removes the directory a prefix names with its objects, checksum records and interrupted writes, and nothing beside it', async () => {
    // Arrange
    await store.put('sessions/gone/run-document.json', '{}');
    await store.put('sessions/gone/logs/0-base.log', 'log');
    await writeFile(join(root, 'artifacts', 'sessions', 'gone', 'logs', `1-site.log.${'f'.repeat(8)}.partial`), 'half');
    await store.put('sessions/gone-too/run-document.json', '{}');
    // Act
    const removed = await store.deletePrefix('sessions/gone/');
    // Assert
    expect(removed).toBe(2);
    expect(await readdir(join(root, 'artifacts', 'sessions'))).toEqual(['gone-too']);
    expect(await readdir(join(root, 'artifacts', '.etags', 'sessions'))).toEqual(['gone-too']);
    expect(await store.list('sessions/')).toEqual(['sessions/gone-too/run-document.json']);
    expect(await store.deletePrefix('sessions/gone/')).toBe(0);
  });

  it('refuses a prefix that is not a directory or could leave the store', async () => {
    // Act / Assert
    await expect(store.deletePrefix('sessions/gone')).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(store.deletePrefix('sessions/../')).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(store.listModified('../')).rejects.toMatchObject({ name: 'ValidationError' });
  });

  it('lists the objects under a prefix with their modification time', async () => {
    // Arrange
    await store.put('sessions/s/logs/0-base.log', 'log');
    await store.put('sessions/s/run-document.json', '{}');
    const old = new Date('2026-01-01T00:00:00Z');
    await utimes(join(root, 'artifacts', 'sessions', 's', 'run-document.json'), old, old);
    // Act
    const listed = await store.listModified('sessions/');
    // Assert
    expect(listed.map((o) => o.key)).toEqual(['sessions/s/logs/0-base.log', 'sessions/s/run-document.json']);
    expect(listed[1]!.modified.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(Date.now() - listed[0]!.modified.getTime()).toBeLessThan(60_000);
  });
});

describe('loadOrCreateSigningSecret', () => {
  it('creates a private secret once and returns the same one afterwards', async () => {
    // Arrange
    const file = join(root, 'data', 'artifact-url-secret');
    // Act
    const first = await loadOrCreateSigningSecret(file);
    const second = await loadOrCreateSigningSecret(file);
    // Assert
    expect(first.length).toBe(32);
    expect(second.equals(first)).toBe(true);
    expect((await readFile(file)).equals(first)).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});
