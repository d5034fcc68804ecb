import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  artifactDownloadUrl,
  artifactUploadUrl,
  createImage,
  deleteImage,
  isImageReady,
  patchImage,
  readManifest,
  registerManifest,
  verifyStoredArtifact,
  type ArtifactToRegister,
} from '../../functions/core/images/index.ts';
import type { ImageRecord } from '../../functions/core/model/image.ts';
import { imageWorld, sessionTargeting, type ImageWorld } from './images-fakes.ts';

let world: ImageWorld;
beforeEach(async () => {
  world = await imageWorld();
});
afterEach(async () => world.cleanup());

/** Stores bytes at the image's own key and describes them for registration. */
async function upload(id: string, name: ArtifactToRegister['name'], content: string): Promise<ArtifactToRegister> {
  const key = `boot-images/${id}/${name}`;
  const stored = await world.artifacts.put(key, content);
  return { name, key, size: stored.size, md5: stored.md5, sha256: stored.sha256 };
}

async function registered(name: string): Promise<ImageRecord> {
  const image = await createImage(world.deps, { name });
  return registerManifest(world.deps, image.id, [await upload(image.id, 'rootfs', `${name} root`)]);
}

describe('createImage', () => {
  it('assigns a UUID, the clock time and x86_64, and keeps given metadata', async () => {
    // Act
    const image = await createImage(world.deps, { name: 'base', metadata: { team: 'a' } });
    // Assert
    expect(image).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), name: 'base', created: '2026-03-04T05:06:07.000Z', arch: 'x86_64', metadata: { team: 'a' } });
    expect(await world.registry.get(image.id)).toEqual(image);
    expect(world.events).toEqual([]);
  });

  it('uses an id the caller allocated (the workflow allocates result ids when staging)', async () => {
    // Act
    const image = await createImage(world.deps, { name: 'result', arch: 'aarch64' }, { id: '11111111-1111-4111-8111-111111111111' });
    // Assert
    expect(image).toMatchObject({ id: '11111111-1111-4111-8111-111111111111', arch: 'aarch64' });
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: '..' }, 'name'],
    [{ name: 'x'.repeat(256) }, 'name'],
    [{ name: 'tab\there' }, 'name'],
    [{ name: 'x', arch: 'ppc64le' }, 'arch'],
    [{ name: 'x', link: { path: '' , type: 's3' } }, 'link.path'],
    [null, undefined],
  ])('refuses %j with a ValidationError on %s', async (input, field) => {
    // Act / Assert
    await expect(createImage(world.deps, input)).rejects.toMatchObject({ name: 'ValidationError', field });
    expect(world.registry.records.size).toBe(0);
  });

  it('registers and announces an image created with a link to a manifest listing a rootfs', async () => {
    // Arrange
    const source = await registered('source');
    world.events.length = 0;
    // Act
    const image = await createImage(world.deps, { name: 'copy', link: source.link });
    // Assert
    expect(image.rootfs_registered).toBe('2026-03-04T05:06:07.000Z');
    expect(world.events).toEqual([{ source: 'cfs.ims', detailType: 'Image Registered', detail: { id: image.id, name: 'copy', arch: 'x86_64', metadata: {} } }]);
  });

  it('accepts a link to a manifest that does not exist yet, and refuses one to bytes that are not a manifest', async () => {
    // Arrange
    await world.artifacts.put('boot-images/junk/manifest.json', 'not json');
    // Act
    const pending = await createImage(world.deps, { name: 'later', link: { path: 's3://boot-images/later/manifest.json', type: 's3' } });
    const junk = createImage(world.deps, { name: 'junk', link: { path: 's3://boot-images/junk/manifest.json', type: 's3' } });
    // Assert
    expect(pending.rootfs_registered).toBeUndefined();
    await expect(junk).rejects.toMatchObject({ name: 'ValidationError', field: 'link.path' });
    expect(world.events).toEqual([]);
  });
});

describe('readManifest and isImageReady', () => {
  it('reads a registered manifest and calls the image ready', async () => {
    // Arrange
    const image = await registered('ready');
    // Act
    const manifest = await readManifest(world.artifacts, image);
    // Assert
    expect(manifest?.artifacts).toHaveLength(1);
    expect(manifest?.artifacts[0]).toMatchObject({ type: 'application/vnd.cray.image.rootfs.squashfs', sha256: createHash('sha256').update('ready root').digest('hex'), size: 10 });
    expect(isImageReady(image, manifest)).toBe(true);
  });

  it('is not ready without a record, without a link, or with a manifest listing no rootfs', async () => {
    // Arrange
    const bare = await createImage(world.deps, { name: 'bare' });
    const kernelOnly = await createImage(world.deps, { name: 'kernel-only' });
    const withKernel = await registerManifest(world.deps, kernelOnly.id, [await upload(kernelOnly.id, 'kernel', 'k')]);
    const manifest = await readManifest(world.artifacts, withKernel);
    // Act / Assert
    expect(await readManifest(world.artifacts, bare)).toBeUndefined();
    expect(isImageReady(bare, undefined)).toBe(false);
    expect(isImageReady(undefined, manifest)).toBe(false);
    expect(isImageReady(withKernel, manifest)).toBe(false);
    expect(world.events).toEqual([]);
  });

  it('reports a manifest that is not valid as an IntegrityError', async () => {
    // Arrange
    await world.artifacts.put('boot-images/bad/manifest.json', JSON.stringify({ version: '1.0', created: 'x', artifacts: [{ type: 't' }] }));
    const image: ImageRecord = { id: 'bad', name: 'bad', created: '', arch: 'x86_64', link: { path: 's3://boot-images/bad/manifest.json', type: 's3' } };
    // Act / Assert
    await expect(readManifest(world.artifacts, image)).rejects.toMatchObject({ name: 'IntegrityError', message: expect.stringContaining('not a valid IMS manifest') });
  });
});

describe('registerManifest and the Image Registered event', () => {
  it('writes an IMS manifest with link, type, md5, sha256 and size, links the image and announces it', async () => {
    // Arrange
    const image = await createImage(world.deps, { name: 'fresh', metadata: { a: 'b' } });
    const rootfs = await upload(image.id, 'rootfs', 'squash');
    const initrd = await upload(image.id, 'initrd', 'initrd');
    // Act
    const linked = await registerManifest(world.deps, image.id, [rootfs, initrd]);
    // Assert
    expect(linked.link).toEqual({ path: `s3://boot-images/${image.id}/manifest.json`, etag: expect.any(String), type: 's3' });
    expect(await readManifest(world.artifacts, linked)).toEqual({
      version: '1.0',
      created: '2026-03-04T05:06:07.000Z',
      artifacts: [
        { link: { path: `s3://${rootfs.key}`, etag: expect.any(String), type: 's3' }, type: 'application/vnd.cray.image.rootfs.squashfs', md5: rootfs.md5, sha256: rootfs.sha256, size: rootfs.size },
        { link: { path: `s3://${initrd.key}`, etag: expect.any(String), type: 's3' }, type: 'application/vnd.cray.image.initrd', md5: initrd.md5, sha256: initrd.sha256, size: initrd.size },
      ],
    });
    expect(world.events).toEqual([{ source: 'cfs.ims', detailType: 'Image Registered', detail: { id: image.id, name: 'fresh', arch: 'x86_64', metadata: { a: 'b' } } }]);
  });

  it('refuses bytes that do not match what the uploader measured, and registers nothing', async () => {
    // Arrange
    const image = await createImage(world.deps, { name: 'tampered' });
    const rootfs = await upload(image.id, 'rootfs', 'good');
    await world.artifacts.put(rootfs.key, 'evil');
    // Act
    const attempt = registerManifest(world.deps, image.id, [rootfs]);
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'IntegrityError', message: expect.stringContaining('md5') });
    expect((await world.registry.get(image.id))?.link).toBeUndefined();
    expect(await world.artifacts.head(`boot-images/${image.id}/manifest.json`)).toBeUndefined();
    expect(world.events).toEqual([]);
  });

  it('hashes the stored bytes when the store cannot vouch for them, catching a wrong sha256', async () => {
    // Arrange: bytes rewritten behind the store's back (same size), so its ETag is no md5
    const image = await createImage(world.deps, { name: 'rewritten' });
    const rootfs = await upload(image.id, 'rootfs', 'good');
    await writeFile(world.artifacts.pathOf(rootfs.key), 'good');
    const etag = (await world.artifacts.head(rootfs.key))?.etag;
    // Act
    const wrongSha = registerManifest(world.deps, image.id, [{ ...rootfs, sha256: '0'.repeat(64) }]);
    // Assert
    expect(etag).not.toBe(rootfs.md5);
    await expect(wrongSha).rejects.toMatchObject({ name: 'IntegrityError', message: expect.stringContaining(`sha256 is ${rootfs.sha256}`) });
    await expect(registerManifest(world.deps, image.id, [rootfs])).resolves.toMatchObject({ link: { type: 's3' } });
  });

  it('reads the bytes again unless told to accept the store md5, so a wrong sha256 is caught by default', async () => {
    // Arrange
    const image = await createImage(world.deps, { name: 'default-verify' });
    const rootfs = await upload(image.id, 'rootfs', 'bytes');
    const wrongSha = { ...rootfs, sha256: '1'.repeat(64) };
    // Act / Assert
    await expect(verifyStoredArtifact(world.artifacts, rootfs.key, wrongSha)).rejects.toMatchObject({ name: 'IntegrityError', message: expect.stringContaining('sha256') });
    await expect(verifyStoredArtifact(world.artifacts, rootfs.key, wrongSha, { acceptStoreMd5: true })).resolves.toBeUndefined();
    await expect(verifyStoredArtifact(world.artifacts, rootfs.key, { ...rootfs, size: 4 }, { acceptStoreMd5: true })).rejects.toMatchObject({ message: expect.stringContaining('holds 5 bytes') });
  });

  it('announces an image once when two registrations of the same artifacts race', async () => {
    // Arrange
    const image = await createImage(world.deps, { name: 'race' });
    const rootfs = await upload(image.id, 'rootfs', 'racing');
    // Act
    await Promise.all([registerManifest(world.deps, image.id, [rootfs]), registerManifest(world.deps, image.id, [rootfs])]);
    const again = await registerManifest(world.deps, image.id, [rootfs]);
    // Assert
    expect(world.events).toHaveLength(1);
    expect(again.rootfs_registered).toBe('2026-03-04T05:06:07.000Z');
  });

  it('refuses a second manifest with different artifacts', async () => {
    // Arrange
    const image = await registered('fixed');
    // Act / Assert
    await expect(registerManifest(world.deps, image.id, [await upload(image.id, 'kernel', 'k')], { verified: true })).rejects.toMatchObject({ name: 'ConflictError' });
  });

  it('takes the stamp back when publishing fails, so a retry announces the image', async () => {
    // Arrange
    const image = await createImage(world.deps, { name: 'retry' });
    const rootfs = await upload(image.id, 'rootfs', 'r');
    world.failPublishes(1);
    // Act
    const failed = await registerManifest(world.deps, image.id, [rootfs]).catch((error: Error) => error);
    const stampAfterFailure = (await world.registry.get(image.id))?.rootfs_registered;
    await registerManifest(world.deps, image.id, [rootfs]);
    // Assert
    expect((failed as Error).message).toBe('event bus unavailable');
    expect(stampAfterFailure).toBeUndefined();
    expect(world.events.map((e) => e.detail.id)).toEqual([image.id]);
  });
});

describe('patchImage', () => {
  it('applies set and remove operations in order and changes arch', async () => {
    // Arrange
    const image = await createImage(world.deps, { name: 'p', metadata: { a: '1', b: '2' } });
    // Act
    const patched = await patchImage(world.deps, image.id, {
      arch: 'aarch64',
      metadata: [
        { operation: 'remove', key: 'a' },
        { operation: 'set', key: 'c', value: '3' },
        { operation: 'remove', key: 'absent' },
      ],
    });
    // Assert
    expect(patched).toMatchObject({ arch: 'aarch64', metadata: { b: '2', c: '3' } });
  });

  it('refuses moving a link to other bytes but accepts the same path again', async () => {
    // Arrange
    const image = await registered('linked');
    // Act / Assert
    await expect(patchImage(world.deps, image.id, { link: { path: 's3://boot-images/other/manifest.json', type: 's3' } })).rejects.toMatchObject({ name: 'ConflictError' });
    await expect(patchImage(world.deps, image.id, { link: { ...image.link!, etag: 'new' } })).resolves.toMatchObject({ link: { etag: 'new' } });
    expect(world.events).toHaveLength(1);
  });

  it('answers a missing image with NotFoundError', async () => {
    // Act / Assert
    await expect(patchImage(world.deps, 'missing', { arch: 'x86_64' })).rejects.toMatchObject({ name: 'NotFoundError' });
  });
});

describe('artifact URLs', () => {
  it('hands out an upload URL for an image without a manifest and refuses one afterwards', async () => {
    // Arrange
    const image = await createImage(world.deps, { name: 'u' });
    // Act
    const url = await artifactUploadUrl(world.deps, image.id, 'rootfs', { expires_in: 120 });
    await registerManifest(world.deps, image.id, [await upload(image.id, 'rootfs', 'x')]);
    // Assert
    expect(url).toMatchObject({ artifact: 'rootfs', key: `boot-images/${image.id}/uploads/rootfs`, method: 'PUT', expires_at: '2026-03-04T05:08:07.000Z' });
    expect(url.url).toMatch(new RegExp(`^http://127.0.0.1:9/artifacts/boot-images/${image.id}/uploads/rootfs\\?expires=\\d+&signature=[0-9a-f]{64}$`));
    await expect(artifactUploadUrl(world.deps, image.id, 'kernel', undefined)).rejects.toMatchObject({ name: 'ConflictError' });
  });

  it("lasts at most the deployment's upload URL lifetime (15 minutes unless set), whatever the client asks for", async () => {
    // Arrange
    const image = await createImage(world.deps, { name: 'short' });
    // Act
    const byDefault = await artifactUploadUrl(world.deps, image.id, 'rootfs', undefined);
    const askedLonger = await artifactUploadUrl(world.deps, image.id, 'rootfs', { expires_in: 86_400 });
    const set = await artifactUploadUrl({ ...world.deps, uploadUrlSeconds: 60 }, image.id, 'rootfs', { expires_in: 600 });
    // Assert
    expect(byDefault.expires_at).toBe('2026-03-04T05:21:07.000Z');
    expect(askedLonger.expires_at).toBe('2026-03-04T05:21:07.000Z');
    expect(set.expires_at).toBe('2026-03-04T05:07:07.000Z');
    const signedUntil = (url: string) => Number(new URL(url).searchParams.get('expires')) - Math.floor(Date.now() / 1000);
    expect(signedUntil(askedLonger.url)).toBeLessThanOrEqual(900);
    expect(signedUntil(set.url)).toBeLessThanOrEqual(60);
  });

  it('refuses an unknown artifact name and an expiry beyond seven days', async () => {
    // Arrange
    const image = await createImage(world.deps, { name: 'v' });
    // Act / Assert
    await expect(artifactUploadUrl(world.deps, image.id, 'vmlinux', {})).rejects.toMatchObject({ name: 'ValidationError', field: 'artifact' });
    await expect(artifactUploadUrl(world.deps, image.id, 'rootfs', { expires_in: 604_801 })).rejects.toMatchObject({ name: 'ValidationError', field: 'expires_in' });
  });

  it('gives a download URL with the manifest checksums, following a link outside the image prefix', async () => {
    // Arrange
    const source = await registered('shared-source');
    const copy = await createImage(world.deps, { name: 'shared-copy', link: source.link });
    // Act
    const url = await artifactDownloadUrl(world.deps, copy.id, 'rootfs', {});
    // Assert
    expect(url).toMatchObject({ key: `boot-images/${source.id}/rootfs`, method: 'GET', sha256: createHash('sha256').update('shared-source root').digest('hex') });
    await expect(artifactDownloadUrl(world.deps, copy.id, 'kernel', {})).rejects.toMatchObject({ name: 'NotFoundError' });
  });
});

describe('deleteImage', () => {
  it('is refused while a pending session targets the image as a member or an image-map source, unless forced', async () => {
    // Arrange
    const member = await createImage(world.deps, { name: 'member' });
    const mapped = await createImage(world.deps, { name: 'mapped' });
    const finished = await createImage(world.deps, { name: 'finished' });
    const sessions = [
      sessionTargeting('pending-one', 'pending', { members: [member.id] }),
      sessionTargeting('mapping-one', 'running', { mapped: [mapped.id] }),
      sessionTargeting('old-one', 'complete', { members: [finished.id] }),
    ];
    const deps = { ...world.deps, sessions: (await imageWorld(sessions)).deps.sessions };
    // Act / Assert
    await expect(deleteImage(deps, member.id)).rejects.toMatchObject({ name: 'InvalidStateError', message: expect.stringContaining('pending-one') });
    await expect(deleteImage(deps, mapped.id)).rejects.toMatchObject({ name: 'InvalidStateError', message: expect.stringContaining('mapping-one') });
    await expect(deleteImage(deps, finished.id)).resolves.toBeUndefined();
    await expect(deleteImage(deps, member.id, { force: true })).resolves.toBeUndefined();
    expect(await world.registry.get(member.id)).toBeUndefined();
  });

  it('removes unregistered uploads and its own artifacts, keeping what another manifest lists', async () => {
    // Arrange
    const source = await registered('source');
    const copy = await createImage(world.deps, { name: 'copy' });
    const sourceKernel = await upload(source.id, 'kernel', 'shared kernel');
    // the copy's manifest lists its own rootfs and the source's kernel, as a customized image does
    await registerManifest(world.deps, copy.id, [await upload(copy.id, 'rootfs', 'custom root'), sourceKernel]);
    await world.artifacts.put(`boot-images/${source.id}/initrd`, 'uploaded, never registered');
    // Act
    await deleteImage(world.deps, source.id);
    const afterSource = await world.artifacts.list('boot-images/');
    await deleteImage(world.deps, copy.id);
    // Assert
    expect(afterSource).toEqual([`boot-images/${copy.id}/manifest.json`, `boot-images/${copy.id}/rootfs`, sourceKernel.key].sort());
    expect(await world.artifacts.list('boot-images/')).toEqual([]);
  });

  it('answers a missing image with NotFoundError', async () => {
    // Act / Assert
    await expect(deleteImage(world.deps, 'missing')).rejects.toMatchObject({ name: 'NotFoundError' });
  });
});
