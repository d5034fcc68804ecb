import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DeliveredEvent } from '../../functions/adapters/local/in-process-event-bus.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { bearer } from '../helpers/api-token.ts';
import { imsResponseErrors } from './ims-spec.ts';

let runtime: EmbeddedRuntime;
let dataDir: string;
let events: DeliveredEvent[];

// Response bodies are whatever the API sent; the tests assert on their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { ...bearer(runtime), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

function checksums(bytes: Buffer) {
  return {
    size: bytes.length,
    md5: createHash('md5').update(bytes).digest('hex'),
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
}

/** Creates an image and uploads + registers the given artifacts through the API's URL flow. */
async function registeredImage(name: string, artifacts: Record<string, Buffer>) {
  const created = await api('POST', '/apis/ims/v3/images', { name });
  const id = created.body.id as string;
  const listed = [];
  for (const [artifact, bytes] of Object.entries(artifacts)) {
    const url = await api('POST', `/apis/ims/v3/images/${id}/artifacts/${artifact}/upload-url`);
    const put = await fetch(url.body.url, { method: 'PUT', body: bytes });
    expect(put.status).toBe(200);
    listed.push({ name: artifact, ...checksums(bytes) });
  }
  const registered = await api('PUT', `/apis/ims/v3/images/${id}/manifest`, { artifacts: listed });
  return { id, registered };
}

function session(name: string, status: 'pending' | 'running' | 'complete', imageId: string): SessionRecord {
  return {
    name,
    configuration: { name: 'c', limit: '' },
    ansible: { config: '', limit: '', verbosity: 0, passthrough: '' },
    target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }], image_map: [] },
    tags: {},
    debug_on_failure: false,
    status: { session: { status, succeeded: 'none', start_time: '2026-01-01T00:00:00Z' }, artifacts: [], layers: [] },
  };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'ims-api-'));
  runtime = await startEmbeddedRuntime({ dataDir, port: 0 });
  runtime.bus.subscribe('Image Registered', (event) => {
    events.push(event);
  });
});
afterAll(async () => {
  await runtime.close();
  await rm(dataDir, { recursive: true, force: true });
});
beforeEach(() => {
  events = [];
});

describe('IMS v3 image records', () => {
  it('creates an image with a server-assigned UUID, RFC 3339 created time and x86_64 by default', async () => {
    // Arrange
    const before = Date.now();
    // Act
    const created = await api('POST', '/apis/ims/v3/images', { name: 'base', id: 'ignored', created: 'ignored' });
    // Assert
    expect(created.status).toBe(201);
    expect(await imsResponseErrors('POST', '/v3/images', 201, created.body)).toBeUndefined();
    expect(created.body).toMatchObject({ name: 'base', arch: 'x86_64', metadata: {} });
    expect(created.body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(created.body.created).toMatch(/Z$/);
    expect(Date.parse(created.body.created)).toBeGreaterThanOrEqual(before - 1000);
    expect(created.body).not.toHaveProperty('link');
  });

  it('lists and gets records that validate against the IMS spec, on v3 and the unversioned alias', async () => {
    // Arrange
    const created = await api('POST', '/apis/ims/v3/images', { name: 'listed', arch: 'aarch64', metadata: { a: 'b' } });
    // Act
    const list = await api('GET', '/apis/ims/v3/images');
    const one = await api('GET', `/apis/ims/v3/images/${created.body.id}`);
    const alias = await api('GET', `/apis/ims/images/${created.body.id}`);
    // Assert
    expect(list.status).toBe(200);
    expect(await imsResponseErrors('GET', '/v3/images', 200, list.body)).toBeUndefined();
    expect(list.body.map((i: { id: string }) => i.id)).toContain(created.body.id);
    expect(one.body).toEqual(created.body);
    expect(await imsResponseErrors('GET', '/v3/images/{image_id}', 200, one.body)).toBeUndefined();
    expect(alias.body).toEqual(created.body);
  });

  it.each([
    [{ name: '' }, 'name', 'name must not be empty'],
    [{ name: 'x', arch: 'sparc' }, 'arch', 'arch must be one of x86_64, aarch64'],
    [{ arch: 'x86_64' }, 'name', 'name is required'],
    [{ name: 'a/b' }, 'name', 'name must not contain "/"'],
    [{ name: 'x', metadata: { k: 1 } }, 'metadata.k', 'metadata values must be strings'],
  ])('refuses the create body %j with a 400 naming %s', async (body, field, detail) => {
    // Act
    const response = await api('POST', '/apis/ims/v3/images', body);
    // Assert
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.body).toMatchObject({ title: 'Bad Request', status: 400, field, detail });
    expect(await imsResponseErrors('POST', '/v3/images', 400, response.body)).toBeUndefined();
  });

  it('refuses an empty or malformed body with a 400 problem', async () => {
    // Act
    const empty = await api('POST', '/apis/ims/v3/images', '');
    const malformed = await api('POST', '/apis/ims/v3/images', '{"name":');
    // Assert
    expect(empty.status).toBe(400);
    expect(empty.body.detail).toMatch(/no input provided/);
    expect(malformed.status).toBe(400);
    expect(malformed.body.detail).toMatch(/not valid JSON/);
  });

  it('answers a missing image with a 404 problem that validates against the spec', async () => {
    // Act
    const response = await api('GET', '/apis/ims/v3/images/00000000-0000-4000-8000-000000000000');
    // Assert
    expect(response.status).toBe(404);
    expect(response.body.detail).toBe("image '00000000-0000-4000-8000-000000000000' does not exist");
    expect(await imsResponseErrors('GET', '/v3/images/{image_id}', 404, response.body)).toBeUndefined();
  });

  it('patches metadata with set and remove operations, as a list or a single operation, and arch', async () => {
    // Arrange
    const { body: image } = await api('POST', '/apis/ims/v3/images', { name: 'meta', metadata: { keep: '1', drop: '2' } });
    // Act
    const listed = await api('PATCH', `/apis/ims/v3/images/${image.id}`, {
      arch: 'aarch64',
      metadata: [
        { operation: 'set', key: 'added', value: 'yes' },
        { operation: 'remove', key: 'drop' },
      ],
    });
    const single = await api('PATCH', `/apis/ims/v3/images/${image.id}`, { metadata: { operation: 'set', key: 'keep', value: 'changed' } });
    // Assert
    expect(listed.status).toBe(200);
    expect(await imsResponseErrors('PATCH', '/v3/images/{image_id}', 200, listed.body)).toBeUndefined();
    expect(listed.body).toMatchObject({ arch: 'aarch64', metadata: { keep: '1', added: 'yes' } });
    expect(single.body.metadata).toEqual({ keep: 'changed', added: 'yes' });
  });

  it('refuses an empty patch, a set without value, and a patch of a missing image', async () => {
    // Arrange
    const { body: image } = await api('POST', '/apis/ims/v3/images', { name: 'patch-errors' });
    // Act
    const empty = await api('PATCH', `/apis/ims/v3/images/${image.id}`, {});
    const noValue = await api('PATCH', `/apis/ims/v3/images/${image.id}`, { metadata: [{ operation: 'set', key: 'k' }] });
    const missing = await api('PATCH', '/apis/ims/v3/images/00000000-0000-4000-8000-000000000000', { arch: 'x86_64' });
    // Assert
    expect(empty.status).toBe(400);
    expect(empty.body.detail).toMatch(/no input provided/);
    expect(noValue.body).toMatchObject({ status: 400, field: 'metadata[0].value', detail: 'a set operation needs a value' });
    expect(missing.status).toBe(404);
  });

  it('answers a wrong method with 405 and an Allow header', async () => {
    // Act
    const response = await api('PUT', '/apis/ims/v3/images');
    // Assert
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, POST');
  });
});

describe('the artifact flow: upload URL, manifest, download URL', () => {
  it('registers an uploaded rootfs and kernel in an IMS manifest with md5 and sha256, and announces the image once', async () => {
    // Arrange
    const rootfs = Buffer.from('pretend squashfs bytes '.repeat(1000));
    const kernel = Buffer.from('pretend kernel');
    // Act
    const { id, registered } = await registeredImage('with-artifacts', { rootfs, kernel });
    await runtime.bus.idle();
    const manifest = await api('GET', `/apis/ims/v3/images/${id}/manifest`);
    // Assert
    expect(registered.status).toBe(200);
    expect(await imsResponseErrors('GET', '/v3/images/{image_id}', 200, registered.body)).toBeUndefined();
    expect(registered.body.link).toMatchObject({ path: `s3://boot-images/${id}/manifest.json`, type: 's3' });
    expect(manifest.body.version).toBe('1.0');
    expect(manifest.body.artifacts).toEqual([
      {
        link: { path: `s3://boot-images/${id}/rootfs`, etag: expect.any(String), type: 's3' },
        type: 'application/vnd.cray.image.rootfs.squashfs',
        ...checksums(rootfs),
      },
      {
        link: { path: `s3://boot-images/${id}/kernel`, etag: expect.any(String), type: 's3' },
        type: 'application/vnd.cray.image.kernel',
        ...checksums(kernel),
      },
    ]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ source: 'cfs.ims', detailType: 'Image Registered', detail: { id, name: 'with-artifacts', arch: 'x86_64', metadata: {} } });
  });

  it('treats a repeated registration with the same artifacts as done, without a second event', async () => {
    // Arrange
    const rootfs = Buffer.from('root');
    const { id, registered } = await registeredImage('repeat', { rootfs });
    await runtime.bus.idle();
    events = [];
    // Act
    const again = await api('PUT', `/apis/ims/v3/images/${id}/manifest`, { artifacts: [{ name: 'rootfs', ...checksums(rootfs) }] });
    const different = await api('PUT', `/apis/ims/v3/images/${id}/manifest`, { artifacts: [{ name: 'rootfs', ...checksums(Buffer.from('other')) }] });
    const uploadAfter = await api('POST', `/apis/ims/v3/images/${id}/artifacts/initrd/upload-url`);
    await runtime.bus.idle();
    // Assert
    expect(again.status).toBe(200);
    expect(again.body).toEqual(registered.body);
    expect(different.status).toBe(409);
    expect(uploadAfter.status).toBe(409);
    expect(events).toHaveLength(0);
  });

  it('refuses a manifest whose checksums do not match the stored bytes, naming the artifact, and leaves the image unregistered', async () => {
    // Arrange
    const { body: image } = await api('POST', '/apis/ims/v3/images', { name: 'mismatch' });
    const url = await api('POST', `/apis/ims/v3/images/${image.id}/artifacts/rootfs/upload-url`);
    await fetch(url.body.url, { method: 'PUT', body: Buffer.from('actual bytes') });
    const claimed = { ...checksums(Buffer.from('actual bytes')), md5: 'f'.repeat(32) };
    // Act
    const response = await api('PUT', `/apis/ims/v3/images/${image.id}/manifest`, { artifacts: [{ name: 'rootfs', ...claimed }] });
    const missing = await api('PUT', `/apis/ims/v3/images/${image.id}/manifest`, { artifacts: [{ name: 'rootfs', ...claimed }, { name: 'kernel', ...checksums(Buffer.from('k')) }] });
    // Assert
    expect(response.status).toBe(400);
    expect(response.body.field).toBe('artifacts[0]');
    expect(response.body.detail).toMatch(/rootfs md5 of the uploaded bytes is [0-9a-f]{32} \(measured by the store\), the manifest declares f{32}; upload it again/);
    expect(missing.status).toBe(400);
    expect((await api('GET', `/apis/ims/v3/images/${image.id}`)).body).not.toHaveProperty('link');
  });

  it('hands out a download URL with the manifest checksums that serves the stored bytes', async () => {
    // Arrange
    const rootfs = Buffer.from('downloadable');
    const { id } = await registeredImage('download', { rootfs });
    // Act
    const url = await api('POST', `/apis/ims/v3/images/${id}/artifacts/rootfs/download-url`, { expires_in: 60 });
    const bytes = Buffer.from(await (await fetch(url.body.url)).arrayBuffer());
    const absent = await api('POST', `/apis/ims/v3/images/${id}/artifacts/kernel/download-url`);
    const unknown = await api('POST', `/apis/ims/v3/images/${id}/artifacts/bootloader/download-url`);
    // Assert
    expect(url.body).toMatchObject({ artifact: 'rootfs', method: 'GET', key: `boot-images/${id}/rootfs`, ...checksums(rootfs) });
    expect(bytes.equals(rootfs)).toBe(true);
    expect(absent.status).toBe(404);
    expect(unknown.body).toMatchObject({ status: 400, field: 'artifact' });
  });

  it('registers an image whose link is patched to a manifest listing a rootfs, and refuses moving a link', async () => {
    // Arrange
    const { id: source } = await registeredImage('linked-source', { rootfs: Buffer.from('r') });
    const { body: image } = await api('POST', '/apis/ims/v3/images', { name: 'linked' });
    await runtime.bus.idle();
    events = [];
    // Act
    const linked = await api('PATCH', `/apis/ims/v3/images/${image.id}`, { link: { path: `s3://boot-images/${source}/manifest.json`, type: 's3' } });
    const moved = await api('PATCH', `/apis/ims/v3/images/${image.id}`, { link: { path: 's3://boot-images/elsewhere/manifest.json', type: 's3' } });
    await runtime.bus.idle();
    // Assert
    expect(linked.status).toBe(200);
    expect(events.map((e) => e.detail.id)).toEqual([image.id]);
    expect(moved.status).toBe(409);
    expect(await imsResponseErrors('PATCH', '/v3/images/{image_id}', 409, moved.body)).toBeUndefined();
  });
});

describe('deleting images', () => {
  it('deletes an image and its artifacts', async () => {
    // Arrange
    const { id } = await registeredImage('doomed', { rootfs: Buffer.from('bytes') });
    // Act
    const deleted = await api('DELETE', `/apis/ims/v3/images/${id}`);
    // Assert
    expect(deleted.status).toBe(204);
    expect((await api('GET', `/apis/ims/v3/images/${id}`)).status).toBe(404);
    expect(await runtime.ports.artifacts.list(`boot-images/${id}/`)).toEqual([]);
    expect((await api('DELETE', `/apis/ims/v3/images/${id}`)).status).toBe(404);
  });

  it('keeps artifacts another image still points at, and removes them with the last one', async () => {
    // Arrange
    const { id: first } = await registeredImage('shared-first', { rootfs: Buffer.from('shared') });
    const { body: second } = await api('POST', '/apis/ims/v3/images', { name: 'shared-second' });
    await api('PATCH', `/apis/ims/v3/images/${second.id}`, { link: { path: `s3://boot-images/${first}/manifest.json`, type: 's3' } });
    // Act
    await api('DELETE', `/apis/ims/v3/images/${first}`);
    const afterFirst = await runtime.ports.artifacts.list(`boot-images/${first}/`);
    await api('DELETE', `/apis/ims/v3/images/${second.id}`);
    const afterSecond = await runtime.ports.artifacts.list(`boot-images/${first}/`);
    // Assert
    expect(afterFirst).toEqual([`boot-images/${first}/manifest.json`, `boot-images/${first}/rootfs`]);
    expect(afterSecond).toEqual([]);
  });

  it('refuses with 409 while a pending or running session targets the image, unless forced', async () => {
    // Arrange
    const { id } = await registeredImage('in-use', { rootfs: Buffer.from('busy') });
    await runtime.ports.sessions.create(session(`uses-${id.slice(0, 8)}`, 'running', id));
    await runtime.ports.sessions.create(session(`done-${id.slice(0, 8)}`, 'complete', id));
    // Act
    const refused = await api('DELETE', `/apis/ims/v3/images/${id}`);
    const forced = await api('DELETE', `/apis/ims/v3/images/${id}?force=True`);
    // Assert
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toContain(`uses-${id.slice(0, 8)}`);
    expect(refused.body.detail).not.toContain(`done-${id.slice(0, 8)}`);
    expect(forced.status).toBe(204);
  });
});
