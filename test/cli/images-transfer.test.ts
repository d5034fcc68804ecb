import { S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';
import { downloadFile, uploadFile } from '../../functions/cli/images/transfer.ts';
import type { ArtifactStore } from '../../functions/ports/artifact-store.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';

let dir: string;
let file: string;
let bytes: Buffer;
let runtime: EmbeddedRuntime;
let s3: LocalS3;
let client: S3Client;
const stores: Record<string, ArtifactStore> = {};

const expected = () => ({
  size: bytes.length,
  md5: createHash('md5').update(bytes).digest('hex'),
  sha256: createHash('sha256').update(bytes).digest('hex'),
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-transfer-'));
  file = join(dir, 'rootfs.squashfs');
  bytes = Buffer.alloc(6 * 1024 * 1024 + 17, 0x42);
  bytes.write('not all the same', 1000);
  await writeFile(file, bytes);
  runtime = await startEmbeddedRuntime({ dataDir: join(dir, 'server'), port: 0 });
  s3 = await startLocalS3(join(dir, 's3'), ['boot-images']);
  client = s3.client;
  stores['the embedded signed endpoint'] = runtime.ports.artifacts;
  stores['presigned S3 URLs'] = new S3ArtifactStore(client);
});
afterAll(async () => {
  await runtime.close();
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

describe.each(['the embedded signed endpoint', 'presigned S3 URLs'])('the CLI moving bytes through %s', (kind) => {
  it('uploads a file measuring size, md5 and sha256 while it streams, and downloads it verified', async () => {
    // Arrange
    const store = stores[kind]!;
    const key = `boot-images/${kind.length}/rootfs`;
    const target = join(dir, `${kind.length}.download`);
    // Act
    const uploaded = await uploadFile(await store.uploadUrl(key, 60), file);
    const downloaded = await downloadFile(await store.downloadUrl(key, 60), target, uploaded);
    // Assert
    expect(uploaded).toEqual(expected());
    expect((await store.head(key))?.size).toBe(bytes.length);
    expect(downloaded).toEqual(expected());
    expect((await readFile(target)).equals(bytes)).toBe(true);
  });

  it('writes nothing when the downloaded bytes do not match the expected checksums', async () => {
    // Arrange
    const store = stores[kind]!;
    const key = `boot-images/${kind.length}/kernel`;
    await uploadFile(await store.uploadUrl(key, 60), file);
    const target = join(dir, `${kind.length}.mismatch`);
    // Act
    const attempt = downloadFile(await store.downloadUrl(key, 60), target, { ...expected(), sha256: '0'.repeat(64) });
    // Assert
    await expect(attempt).rejects.toThrow(`downloaded sha256 ${expected().sha256} does not match the manifest's ${'0'.repeat(64)}; nothing was written`);
    expect(existsSync(target)).toBe(false);
    expect((await readdir(dir)).filter((name) => name.includes('.partial'))).toEqual([]);
  });
});

describe('transfer failures', () => {
  it('reports a refused upload in one line with the server reason', async () => {
    // Arrange
    const url = new URL(await runtime.ports.artifacts.uploadUrl('boot-images/refused/rootfs', 60));
    url.searchParams.set('signature', 'f'.repeat(64));
    // Act / Assert
    await expect(uploadFile(url.href, file)).rejects.toThrow(`upload of ${file} refused: Forbidden: the artifact URL signature is not valid for this request`);
  });

  it('reports an unreachable server in one line', async () => {
    // Act / Assert
    await expect(uploadFile('http://127.0.0.1:1/artifacts/x?expires=1&signature=0', file)).rejects.toThrow(/^upload of .* failed: connect ECONNREFUSED 127\.0\.0\.1:1$/);
  });
});
