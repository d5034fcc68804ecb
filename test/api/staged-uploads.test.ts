import { S3Client } from '@aws-sdk/client-s3';
import { serve, type ServerType } from '@hono/node-server';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { createApp } from '../../functions/api/app.ts';
import { artifactRoutes } from '../../functions/api/routes/artifacts.ts';
import { artifactDownloadUrl, artifactUploadUrl, createImage, getImageManifest, registerUploadedArtifacts, type ImageDeps } from '../../functions/core/images/index.ts';
import type { ProductEvent } from '../../functions/ports/event-publisher.ts';
import type { ArtifactStore } from '../../functions/ports/artifact-store.ts';
import { systemClock } from '../../functions/ports/clock.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { MemoryOptions } from '../helpers/cfs-fakes.ts';
import { MemoryImageRegistry, sessionsOf } from '../core/images-fakes.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';

/**
 * Registration and staged uploads through real upload URLs, on both stores: the embedded store
 * behind its signed endpoint (served here on a real socket), and the S3 adapter against s3rver
 * with presigned URLs. The image rules run as the API runs them.
 */
let dir: string;
let s3: LocalS3;
let client: S3Client;
let endpoint: ServerType;
const stores: Record<string, ArtifactStore> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'staged-uploads-'));
  const fs = new FsArtifactStore(join(dir, 'fs'));
  endpoint = await new Promise<ServerType>((ready) => {
    const s = serve({ fetch: artifactRoutes(fs).fetch, port: 0, hostname: '127.0.0.1' }, () => ready(s));
  });
  fs.setBaseUrl(`http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/artifacts`);
  s3 = await startLocalS3(join(dir, 's3'), ['boot-images']);
  client = s3.client;
  stores.embedded = fs;
  stores.s3 = new S3ArtifactStore(client);
});
afterAll(async () => {
  await new Promise((done) => endpoint.close(done));
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

const measure = (bytes: string) => ({
  size: Buffer.byteLength(bytes),
  md5: createHash('md5').update(bytes).digest('hex'),
  sha256: createHash('sha256').update(bytes).digest('hex'),
});

async function put(url: string, bytes: string): Promise<number> {
  const response = await fetch(url, { method: 'PUT', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
  await response.arrayBuffer();
  return response.status;
}

async function download(deps: ImageDeps, id: string): Promise<string> {
  const url = await artifactDownloadUrl(deps, id, 'rootfs', {});
  return (await fetch(url.url)).text();
}

describe.each(['embedded', 's3'])('staged uploads on the %s store', (storeName) => {
  let deps: ImageDeps;
  let events: ProductEvent[];
  beforeEach(() => {
    events = [];
    deps = { images: new MemoryImageRegistry(), artifacts: stores[storeName]!, events: { publish: async (e) => void events.push(e) }, sessions: sessionsOf([]), clock: systemClock };
  });

  it('lets an upload URL handed out before registration, used after it, change nothing the registered image points at', async () => {
    // Arrange
    const image = await createImage(deps, { name: `kept-${storeName}` });
    const used = await artifactUploadUrl(deps, image.id, 'rootfs', {});
    const kept = await artifactUploadUrl(deps, image.id, 'rootfs', {});
    expect(await put(used.url, 'registered bytes')).toBe(200);
    await registerUploadedArtifacts(deps, image.id, { artifacts: [{ name: 'rootfs', ...measure('registered bytes') }] });
    // Act
    const late = await put(kept.url, 'replaced bytes!!');
    // Assert
    expect(late).toBe(200);
    const manifest = await getImageManifest(deps, image.id);
    expect(manifest.artifacts[0]).toMatchObject({ link: { path: `s3://boot-images/${image.id}/rootfs` }, ...measure('registered bytes') });
    expect(await download(deps, image.id)).toBe('registered bytes');
    expect(kept.key).toBe(`boot-images/${image.id}/uploads/rootfs`);
    expect(events.map((e) => e.detailType)).toEqual(['Image Registered']);
  });

  it('refuses at registration a manifest whose declared checksums do not match the uploaded bytes, naming the artifact, and registers nothing', async () => {
    // Arrange
    const image = await createImage(deps, { name: `refused-${storeName}` });
    const url = await artifactUploadUrl(deps, image.id, 'rootfs', {});
    expect(await put(url.url, 'uploaded bytes')).toBe(200);
    // Act
    const attempt = registerUploadedArtifacts(deps, image.id, { artifacts: [{ name: 'rootfs', ...measure('declared bytes') }] });
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'ValidationError', field: 'artifacts[0]', message: expect.stringMatching(/rootfs md5 .*the (manifest declares|uploader measured) /) });
    expect((await deps.images.get(image.id))?.link).toBeUndefined();
    expect(await deps.artifacts.head(`boot-images/${image.id}/rootfs`)).toBeUndefined();
    expect(await deps.artifacts.head(`boot-images/${image.id}/manifest.json`)).toBeUndefined();
    expect(events).toEqual([]);
    // Uploading again and declaring what was uploaded registers it.
    const again = await artifactUploadUrl(deps, image.id, 'rootfs', {});
    expect(await put(again.url, 'declared bytes')).toBe(200);
    await expect(registerUploadedArtifacts(deps, image.id, { artifacts: [{ name: 'rootfs', ...measure('declared bytes') }] })).resolves.toMatchObject({ link: { type: 's3' } });
  });

  it('hands out upload URLs signed for at most the upload URL lifetime', async () => {
    // Arrange
    const image = await createImage(deps, { name: `short-${storeName}` });
    // Act
    const url = new URL((await artifactUploadUrl(deps, image.id, 'rootfs', { expires_in: 86_400 })).url);
    // Assert
    const seconds = storeName === 's3' ? Number(url.searchParams.get('X-Amz-Expires')) : Number(url.searchParams.get('expires')) - Math.floor(Date.now() / 1000);
    expect(seconds).toBeGreaterThan(800);
    expect(seconds).toBeLessThanOrEqual(900);
  });
});

describe('staged uploads on the embedded store, which measures sha256 too', () => {
  it('refuses a manifest with the right md5 and a wrong sha256', async () => {
    // Arrange
    const deps: ImageDeps = { images: new MemoryImageRegistry(), artifacts: stores.embedded!, events: { publish: async () => undefined }, sessions: sessionsOf([]), clock: systemClock };
    const image = await createImage(deps, { name: 'sha' });
    const url = await artifactUploadUrl(deps, image.id, 'rootfs', {});
    await put(url.url, 'some bytes');
    // Act
    const attempt = registerUploadedArtifacts(deps, image.id, { artifacts: [{ name: 'rootfs', ...measure('some bytes'), sha256: '0'.repeat(64) }] });
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'ValidationError', field: 'artifacts[0]', message: expect.stringContaining('sha256 of the uploaded bytes is') });
  });
});

describe('the upload URL lifetime setting', () => {
  it('gives the API app the lifetime it is configured with', async () => {
    // Arrange
    const unused = () => {
      throw new Error('not used by images');
    };
    const registry = new MemoryImageRegistry();
    const ports: AppPorts = {
      images: registry,
      sessions: sessionsOf([]),
      artifacts: stores.s3!,
      events: { publish: async () => undefined },
      clock: { now: () => new Date('2026-03-04T05:06:07.000Z') },
      configurations: { put: unused, get: unused, list: unused, page: unused, delete: unused },
      workflow: { start: unused, stop: unused },
      git: { resolveBranch: unused },
      options: new MemoryOptions(),
    };
    const app = createApp(ports, { uploadUrlSeconds: 60 });
    const image = await createImage({ ...ports }, { name: 'configured' });
    // Act
    const response = await app.request(`/apis/ims/v3/images/${image.id}/artifacts/rootfs/upload-url`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Host: '127.0.0.1' },
      body: JSON.stringify({ expires_in: 3600 }),
    });
    // Assert
    expect(response.status).toBe(200);
    const body = (await response.json()) as { expires_at: string; url: string };
    expect(body.expires_at).toBe('2026-03-04T05:07:07.000Z');
    expect(new URL(body.url).searchParams.get('X-Amz-Expires')).toBe('60');
  });
});
