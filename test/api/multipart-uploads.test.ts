import { serve, type ServerType } from '@hono/node-server';
import { S3Client } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';
import type { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { createApp } from '../../functions/api/app.ts';
import { ApiClient } from '../../functions/cli/api-client.ts';
import { ImagesApi } from '../../functions/cli/images/images-api.ts';
import { importImage } from '../../functions/cli/images/import-image.ts';
import { downloadFile } from '../../functions/cli/images/transfer.ts';
import type { TransferProgress } from '../../functions/cli/progress/transfer-bar.ts';
import { systemClock } from '../../functions/ports/clock.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { MemoryOptions } from '../helpers/cfs-fakes.ts';
import { MemoryImageRegistry, sessionsOf } from '../core/images-fakes.ts';

// Issue 20, item 1: artifacts of any size in parts, each part checked against the sha256 its URL
// is bound to, resumable. Parts are 1 MiB here (the embedded store's minimum; S3's is 5 MiB), so
// a squashfs of about 6 MiB makes seven parts.

const MiB = 1024 * 1024;

let dir: string;
let squashfs: string;
let bytes: Buffer;
let runtime: EmbeddedRuntime;
let api: ImagesApi;
let raw: ApiClient;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'multipart-'));
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc', 'hostname'), 'parts\n');
  // Random bytes do not compress: the squashfs is as big as they are.
  writeFileSync(join(tree, 'noise'), randomBytes(6 * MiB + 12_345));
  squashfs = join(dir, 'rootfs.squashfs');
  execFileSync('mksquashfs', [tree, squashfs, '-noappend', '-quiet', '-no-progress']);
  bytes = await readFile(squashfs);
  runtime = await startEmbeddedRuntime({ dataDir: join(dir, 'server'), port: 0 });
  raw = new ApiClient({ env: { CFS_API_URL: runtime.url, CFS_API_TOKEN: runtime.apiToken } });
  api = new ImagesApi(raw);
});
afterAll(async () => {
  await runtime.close();
  await rm(dir, { recursive: true, force: true });
});

/** Counts the parts the embedded store writes (every part PUT that reaches it). */
function countPartPuts(store: FsArtifactStore): { count: () => number; restore: () => void } {
  const original = store.putPart.bind(store);
  let count = 0;
  store.putPart = (...args) => {
    count++;
    return original(...args);
  };
  return { count: () => count, restore: () => void (store.putPart = original) };
}

/** A JSON request to the API that answers its status and body whatever the status. */
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: { detail?: string; field?: string } & Record<string, unknown> }> {
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${runtime.apiToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as never) : ({} as never) };
}

function partsOf(data: Buffer, size: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += size) parts.push(data.subarray(offset, offset + size));
  return parts;
}

async function putPart(url: { url: string; headers: Record<string, string> }, data: Buffer): Promise<number> {
  const response = await fetch(url.url, { method: 'PUT', body: data, headers: url.headers });
  await response.arrayBuffer();
  return response.status;
}

describe('multipart imports through the embedded server', () => {
  it('imports a squashfs in parts with a progress over every byte, and downloads it verified', async () => {
    // Arrange
    const seen: number[] = [];
    const transfer: TransferProgress = { start: (_label, total) => seen.push(-total), advance: (n) => seen.push(n), finish: () => undefined };
    const store = runtime.ports.artifacts as FsArtifactStore;
    const puts = countPartPuts(store);
    // Act
    const image = await importImage(api, {
      name: 'in-parts',
      arch: 'x86_64',
      squashfs,
      multipartThreshold: MiB,
      partSize: MiB,
      transfer,
      resumeDir: join(dir, 'resume-1'),
    }).finally(puts.restore);
    const source = await api.downloadUrl(image.id, 'rootfs');
    await downloadFile(source.url, join(dir, 'back.squashfs'), source);
    // Assert
    expect(puts.count()).toBe(Math.ceil(bytes.length / MiB));
    expect(seen[0]).toBe(-bytes.length);
    expect(seen.slice(1).reduce((a, b) => a + b, 0)).toBe(bytes.length);
    expect(source).toMatchObject({ size: bytes.length, sha256: sha256(bytes) });
    expect((await readFile(join(dir, 'back.squashfs'))).equals(bytes)).toBe(true);
    // Nothing of the upload is left: no parts, no resume record.
    expect(await readdir(join(dir, 'server', 'artifacts', 'boot-images', image.id, 'uploads', '.multipart'))).toEqual([]);
    expect(await readdir(join(dir, 'resume-1')).catch(() => [])).toEqual([]);
  });

  it('downloads in ranged parts, several at once, and writes the file only when its checksums match', async () => {
    // Arrange
    const image = await importImage(api, { name: 'ranged', arch: 'x86_64', squashfs, multipartThreshold: MiB, partSize: MiB, resumeDir: join(dir, 'resume-r') });
    const source = await api.downloadUrl(image.id, 'rootfs');
    let advanced = 0;
    const progress: TransferProgress = { start: () => undefined, advance: (n) => void (advanced += n), finish: () => undefined };
    const options = { threshold: MiB, partSize: MiB, parallel: 3, progress };
    // Act
    const ranged = await fetch(source.url, { headers: { Range: `bytes=${MiB}-${2 * MiB - 1}` } });
    const rangedBytes = Buffer.from(await ranged.arrayBuffer());
    const measured = await downloadFile(source.url, join(dir, 'ranged.squashfs'), source, undefined, options);
    const tampered = await downloadFile(source.url, join(dir, 'tampered.squashfs'), { ...source, sha256: '0'.repeat(64) }, undefined, options).catch((error: Error) => error);
    // Assert
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes ${MiB}-${2 * MiB - 1}/${bytes.length}`);
    expect(rangedBytes.equals(bytes.subarray(MiB, 2 * MiB))).toBe(true);
    expect(measured).toEqual({ size: bytes.length, md5: source.md5, sha256: sha256(bytes) });
    expect((await readFile(join(dir, 'ranged.squashfs'))).equals(bytes)).toBe(true);
    expect(advanced).toBe(2 * bytes.length);
    expect(tampered).toMatchObject({ name: 'TransferError', message: expect.stringContaining("downloaded sha256 ") });
    expect((await readdir(dir)).filter((name) => name.startsWith('tampered'))).toEqual([]);
  });

  it('resumes an interrupted import sending only the parts the server does not hold', async () => {
    // Arrange: interrupt once three parts have arrived.
    const store = runtime.ports.artifacts as FsArtifactStore;
    const resumeDir = join(dir, 'resume-2');
    const controller = new AbortController();
    let arrived = 0;
    const interrupting: TransferProgress = {
      start: () => undefined,
      advance: () => {
        if (++arrived === 3) controller.abort();
      },
      finish: () => undefined,
    };
    const request = { name: 'resumed', arch: 'x86_64', squashfs, multipartThreshold: MiB, partSize: MiB, parallel: 1, resumeDir };
    const interrupted = await importImage(api, { ...request, transfer: interrupting, signal: controller.signal }).catch((error: Error) => error);
    const [record] = await readdir(resumeDir);
    const kept = JSON.parse(await readFile(join(resumeDir, record!), 'utf8')) as { image_id: string; uploads: { rootfs: { upload_id: string } } };
    const held = await api.receivedParts(kept.image_id, 'rootfs', kept.uploads.rootfs.upload_id);
    const puts = countPartPuts(store);
    // Act
    const image = await importImage(api, request).finally(puts.restore);
    // Assert
    expect(interrupted).toMatchObject({ name: 'CliError', message: expect.stringContaining('run the same command again to send only the missing parts') });
    expect(held!.length).toBeGreaterThanOrEqual(3);
    expect(held!.length).toBeLessThan(Math.ceil(bytes.length / MiB));
    expect(image.id).toBe(kept.image_id);
    expect(puts.count()).toBe(Math.ceil(bytes.length / MiB) - held!.length);
    const source = await api.downloadUrl(image.id, 'rootfs');
    expect(source).toMatchObject({ size: bytes.length, sha256: sha256(bytes) });
    expect(await readdir(resumeDir)).toEqual([]);
  });

  it('refuses a part whose bytes do not hash to the sha256 its URL was signed for, and keeps the part received before', async () => {
    // Arrange
    const image = await api.create({ name: 'bad-part', arch: 'x86_64' });
    const upload = await api.startMultipart(image.id, 'rootfs', { size: 2 * MiB, part_size: MiB });
    const good = Buffer.alloc(MiB, 1);
    const [url] = await api.partUrls(image.id, 'rootfs', upload.upload_id, [{ number: 1, sha256: sha256(good) }]);
    expect(await putPart(url!, good)).toBe(200);
    const other = Buffer.alloc(MiB, 2);
    // Act: the same URL with other bytes, and the other bytes with the header naming their own checksum.
    const wrong = await fetch(url!.url, { method: 'PUT', body: other, headers: url!.headers });
    const wrongBody = (await wrong.json()) as { detail: string };
    const relabelled = await fetch(url!.url, { method: 'PUT', body: other, headers: { 'x-amz-checksum-sha256': Buffer.from(sha256(other), 'hex').toString('base64') } });
    await relabelled.arrayBuffer();
    // Assert
    expect(wrong.status).toBe(400);
    expect(wrongBody.detail).toMatch(/^part 1's bytes hash to sha256 [a-f0-9]{64}, not the [a-f0-9]{64} its URL was signed for; nothing of it was kept$/);
    expect(relabelled.status).toBe(400);
    expect(await api.receivedParts(image.id, 'rootfs', upload.upload_id)).toEqual([{ number: 1, size: MiB, sha256: sha256(good) }]);
  });

  it('refuses a completion with a part missing or a checksum that is not what arrived, naming the part, and stores nothing', async () => {
    // Arrange
    const image = await api.create({ name: 'missing-part', arch: 'x86_64' });
    const data = randomBytes(3 * MiB);
    const upload = await api.startMultipart(image.id, 'rootfs', { size: data.length, part_size: MiB });
    const parts = partsOf(data, MiB).map((part, index) => ({ number: index + 1, sha256: sha256(part), bytes: part }));
    for (const part of [parts[0]!, parts[2]!]) {
      const [url] = await api.partUrls(image.id, 'rootfs', upload.upload_id, [{ number: part.number, sha256: part.sha256 }]);
      expect(await putPart(url!, part.bytes)).toBe(200);
    }
    const path = `/apis/ims/v3/images/${image.id}/artifacts/rootfs/multipart/${upload.upload_id}/complete`;
    const listed = parts.map(({ number, sha256: checksum }) => ({ number, sha256: checksum }));
    // Act
    const missing = await call('POST', path, { parts: listed });
    const mislabelled = await call('POST', path, { parts: [{ ...listed[0]!, sha256: 'a'.repeat(64) }] });
    const short = await call('POST', path, { parts: [listed[0]] });
    // Assert
    expect(missing).toMatchObject({ status: 400, body: { field: 'parts[1]', detail: 'part 2 was not received; send it and complete again' } });
    expect(mislabelled).toMatchObject({ status: 400, body: { field: 'parts[0]', detail: expect.stringContaining(`part 1 was received with sha256 ${listed[0]!.sha256}, the completion lists aaaa`) } });
    expect(short).toMatchObject({ status: 400, body: { detail: 'part 3 was received but the completion lists only 1 parts' } });
    expect(await runtime.ports.artifacts.head(`boot-images/${image.id}/uploads/rootfs`)).toBeUndefined();
    expect((await api.receivedParts(image.id, 'rootfs', upload.upload_id))?.map((p) => p.number)).toEqual([1, 3]);
    // Sending the missing part completes it.
    const [url] = await api.partUrls(image.id, 'rootfs', upload.upload_id, [{ number: 2, sha256: parts[1]!.sha256 }]);
    expect(await putPart(url!, parts[1]!.bytes)).toBe(200);
    expect(await call('POST', path, { parts: listed })).toMatchObject({ status: 200, body: { size: data.length, part_count: 3 } });
    expect((await runtime.ports.artifacts.head(`boot-images/${image.id}/uploads/rootfs`))?.size).toBe(data.length);
  });

  it('refuses every multipart request once the image has a manifest (409), and the registered bytes stay as they were', async () => {
    // Arrange
    const image = await api.create({ name: 'registered', arch: 'x86_64' });
    const data = Buffer.from('registered bytes');
    const upload = await api.startMultipart(image.id, 'rootfs', { size: data.length });
    const [url] = await api.partUrls(image.id, 'rootfs', upload.upload_id, [{ number: 1, sha256: sha256(data) }]);
    expect(await putPart(url!, data)).toBe(200);
    await api.completeMultipart(image.id, 'rootfs', upload.upload_id, [{ number: 1, sha256: sha256(data) }]);
    const md5 = createHash('md5').update(data).digest('hex');
    await api.registerManifest(image.id, [{ name: 'rootfs', size: data.length, md5, sha256: sha256(data) }]);
    const base = `/apis/ims/v3/images/${image.id}/artifacts/rootfs/multipart`;
    // Act
    const answers = [
      await call('POST', base, { size: 10 }),
      await call('POST', `${base}/${upload.upload_id}/parts`, { parts: [{ number: 1, sha256: sha256(data) }] }),
      await call('GET', `${base}/${upload.upload_id}`),
      await call('POST', `${base}/${upload.upload_id}/complete`, { parts: [{ number: 1, sha256: sha256(data) }] }),
      await call('DELETE', `${base}/${upload.upload_id}`),
    ];
    // Assert
    expect(answers.map((a) => a.status)).toEqual([409, 409, 409, 409, 409]);
    const source = await api.downloadUrl(image.id, 'rootfs');
    expect(await (await fetch(source.url)).text()).toBe('registered bytes');
  });

  it('removes the parts of an upload never completed when its image is deleted', async () => {
    // Arrange
    const image = await api.create({ name: 'abandoned', arch: 'x86_64' });
    const upload = await api.startMultipart(image.id, 'rootfs', { size: 2 * MiB, part_size: MiB });
    const part = Buffer.alloc(MiB, 3);
    const [url] = await api.partUrls(image.id, 'rootfs', upload.upload_id, [{ number: 1, sha256: sha256(part) }]);
    expect(await putPart(url!, part)).toBe(200);
    const parts = join(dir, 'server', 'artifacts', 'boot-images', image.id, 'uploads', '.multipart', upload.upload_id);
    expect(await readdir(parts)).toContain('1');
    // Act
    await api.delete(image.id);
    // Assert
    expect(await stat(parts).catch(() => 'gone')).toBe('gone');
  });

  it('refuses parts smaller than the store takes, and an upload larger than its disk holds with a 507', async () => {
    // Arrange
    const image = await api.create({ name: 'limits', arch: 'x86_64' });
    const base = `/apis/ims/v3/images/${image.id}/artifacts/rootfs/multipart`;
    // 4 TiB: within what an upload may be (5 TiB), beyond this machine's disk.
    const free = 4 * 1024 ** 4;
    // Act
    const small = await call('POST', base, { size: 10 * MiB, part_size: 1000 });
    const huge = await call('POST', base, { size: free });
    // Assert
    expect(small).toMatchObject({ status: 400, body: { field: 'part_size', detail: `part_size must be at least ${MiB} bytes on this store` } });
    expect(huge.status).toBe(507);
    expect(huge.body.detail).toMatch(/^an upload of \d+ bytes needs \d+ bytes and the artifact store's disk has \d+ free$/);
  });
});

/**
 * s3rver speaks S3's multipart protocol (create, upload part, complete) but has no ListParts,
 * keeps no part checksums and does not check x-amz-checksum-sha256: this stand-in answers
 * ListParts from the parts s3rver keeps on disk (number, size, md5 ETag). So against it the
 * S3 adapter's create, presigned part URLs, listing and completion run for real, while the
 * checksum refusal itself is S3's (and the embedded store's, tested above).
 */
function listPartsStandIn(root: string) {
  return async (ctx: { method: string; path: string; query: Record<string, string>; status: number; type: string; body: unknown }, next: () => Promise<void>) => {
    if (ctx.method !== 'GET' || !ctx.query.uploadId) return next();
    const bucket = ctx.path.split('/')[1]!;
    const uploadDir = join(root, bucket, '._S3rver_uploads', ctx.query.uploadId);
    const names = await readdir(uploadDir).catch(() => undefined);
    if (!names) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>no such upload</Message></Error>';
      return;
    }
    const parts = [];
    for (const name of names.filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b))) {
      const size = (await stat(join(uploadDir, name))).size;
      const md5 = (await readFile(join(uploadDir, `${name}.md5`), 'utf8')).trim();
      parts.push(`<Part><PartNumber>${name}</PartNumber><ETag>"${md5}"</ETag><Size>${size}</Size></Part>`);
    }
    ctx.status = 200;
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ListPartsResult><UploadId>${ctx.query.uploadId}</UploadId><IsTruncated>false</IsTruncated>${parts.join('')}</ListPartsResult>`;
  };
}

describe('multipart imports through the S3 store (s3rver)', () => {
  let s3: S3rver;
  let client: S3Client;
  let server: ServerType;
  let s3Api: ImagesApi;
  let store: S3ArtifactStore;
  let bigFile: string;
  let big: Buffer;

  beforeAll(async () => {
    const root = join(dir, 's3');
    s3 = new S3rver({ port: 0, address: '127.0.0.1', directory: root, silent: true, configureBuckets: [{ name: 'boot-images', configs: [] }] });
    (s3 as unknown as { middleware: unknown[] }).middleware.unshift(listPartsStandIn(root));
    const { port } = (await s3.run()) as { port: number };
    client = new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    store = new S3ArtifactStore(client);
    const unused = () => {
      throw new Error('not used by images');
    };
    const ports: AppPorts = {
      images: new MemoryImageRegistry(),
      sessions: sessionsOf([]),
      artifacts: store,
      events: { publish: async () => undefined },
      clock: systemClock,
      configurations: { put: unused, get: unused, list: unused, page: unused, delete: unused },
      workflow: { start: unused, stop: unused },
      git: { resolveBranch: unused },
      options: new MemoryOptions(),
    };
    server = await new Promise((ready) => {
      const s = serve({ fetch: createApp(ports).fetch, port: 0, hostname: '127.0.0.1' }, () => ready(s));
    });
    s3Api = new ImagesApi(new ApiClient({ env: { CFS_API_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } }));
    // S3's parts are at least 5 MiB: a squashfs of 11 MiB and some makes three.
    const tree = join(dir, 'tree-s3');
    mkdirSync(tree, { recursive: true });
    writeFileSync(join(tree, 'noise'), randomBytes(11 * MiB));
    bigFile = join(dir, 's3.squashfs');
    execFileSync('mksquashfs', [tree, bigFile, '-noappend', '-quiet', '-no-progress']);
    big = await readFile(bigFile);
  });
  afterAll(async () => {
    await new Promise((done) => server.close(done));
    client.destroy();
    await s3.close();
  });

  it('imports in presigned parts, completes, promotes and registers with the checksums of the S3 object', async () => {
    // Arrange
    const resumeDir = join(dir, 'resume-s3');
    // Act
    const image = await importImage(s3Api, { name: 'on-s3', arch: 'x86_64', squashfs: bigFile, multipartThreshold: 5 * MiB, partSize: 5 * MiB, resumeDir });
    const chunks: Buffer[] = [];
    for await (const chunk of await store.get(`boot-images/${image.id}/rootfs`)) chunks.push(chunk as Buffer);
    // Assert
    expect(Buffer.concat(chunks).equals(big)).toBe(true);
    expect(await s3Api.downloadUrl(image.id, 'rootfs')).toMatchObject({ size: big.length, sha256: sha256(big) });
    expect(await store.head(`boot-images/${image.id}/uploads/rootfs`)).toBeUndefined();
    // And back in ranged parts from a presigned GET.
    const source = await s3Api.downloadUrl(image.id, 'rootfs');
    await downloadFile(source.url, join(dir, 's3-back.squashfs'), source, undefined, { threshold: 5 * MiB, partSize: 5 * MiB });
    expect((await readFile(join(dir, 's3-back.squashfs'))).equals(big)).toBe(true);
  });

  it('signs each part URL for its checksum header and refuses a completion missing a part, naming it', async () => {
    // Arrange
    const image = await s3Api.create({ name: 's3-missing', arch: 'x86_64' });
    const upload = await s3Api.startMultipart(image.id, 'rootfs', { size: big.length, part_size: 5 * MiB });
    const parts = partsOf(big, 5 * MiB).map((part, index) => ({ number: index + 1, sha256: sha256(part), bytes: part }));
    const [first] = await s3Api.partUrls(image.id, 'rootfs', upload.upload_id, [{ number: 1, sha256: parts[0]!.sha256 }]);
    expect(await putPart(first!, parts[0]!.bytes)).toBe(200);
    // Act
    const attempt = s3Api.completeMultipart(image.id, 'rootfs', upload.upload_id, parts.map(({ number, sha256: checksum }) => ({ number, sha256: checksum })));
    // Assert
    expect(new URL(first!.url).searchParams.get('X-Amz-SignedHeaders')).toBe('host;x-amz-checksum-sha256');
    expect(first!.headers).toEqual({ 'x-amz-checksum-sha256': Buffer.from(parts[0]!.sha256, 'hex').toString('base64') });
    await expect(attempt).rejects.toMatchObject({ status: 400, detail: 'part 2 was not received; send it and complete again' });
    expect(await store.head(`boot-images/${image.id}/uploads/rootfs`)).toBeUndefined();
    expect((await s3Api.receivedParts(image.id, 'rootfs', upload.upload_id))?.map((p) => p.number)).toEqual([1]);
  });
});
