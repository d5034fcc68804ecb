import { GetObjectCommand, ListObjectsCommand } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { parseS3StoreLocation } from '../../functions/server/s3-store-location.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { cliEnv } from '../helpers/api-token.ts';
import { TempRepos } from '../helpers/git-repo.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';
import { callApi } from '../helpers/runtime-api.ts';

interface ImageView {
  id: string;
  name: string;
  link?: { path: string };
}

const BUCKET = 'site-cfs';
const PREFIX = 'cfs/artifacts';
/** s3rver's own key pair, given to the server (and through it the runners) as the standard AWS chain reads it. */
const CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

let dir: string;
let s3: LocalS3;
let endpoint: string;
let runtime: EmbeddedRuntime;
const repos = new TempRepos();
const savedEnv: Record<string, string | undefined> = {};

const api = <T>(method: string, path: string, body?: unknown) => callApi<T>(runtime, method, path, body);

/** Every object key in the bucket, as s3rver lists it (not through the store under test). */
async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await s3.client.send(new ListObjectsCommand({ Bucket: BUCKET, Marker: marker }));
    const found = (page.Contents ?? []).map((object) => object.Key!);
    keys.push(...found);
    if (!page.IsTruncated || found.length === 0) return keys.sort();
    marker = found[found.length - 1];
  }
}

async function objectBytes(key: string): Promise<Buffer> {
  const out = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function waitForSession(name: string, timeoutMs: number): Promise<SessionRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api<SessionRecord>('GET', `/apis/cfs/v3/sessions/${name}`);
    if (body.status.session.status === 'complete') return body;
    if (Date.now() > deadline) throw new Error(`session ${name} did not complete in ${timeoutMs} ms: ${JSON.stringify(body.status)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A session's result image once shown: the completion write is the commit point, and the result is shown just after it. */
async function resultImage(id: string, timeoutMs: number): Promise<ImageView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await api<ImageView>('GET', `/apis/ims/v3/images/${id}`);
    if (status === 200) return body;
    if (Date.now() > deadline) throw new Error(`the result image ${id} was not shown in ${timeoutMs} ms (last ${status})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'cfs-s3-store-'));
  s3 = await startLocalS3(join(dir, 's3'), [BUCKET]);
  const { hostname, port } = await s3.client.config.endpoint!();
  endpoint = `http://${hostname}:${port}`;
  // The server and the runners it starts read the standard chain from the environment; the region defaults to us-east-1.
  for (const name of [...Object.keys(CREDENTIALS), 'AWS_REGION', 'AWS_PROFILE']) savedEnv[name] = process.env[name];
  Object.assign(process.env, CREDENTIALS);
  delete process.env.AWS_REGION;
  delete process.env.AWS_PROFILE;
  runtime = await startEmbeddedRuntime({ dataDir: join(dir, 'data'), port: 0, artifactStore: parseS3StoreLocation(`s3://${BUCKET}/${PREFIX}/`, endpoint, process.env) });
});

afterAll(async () => {
  await runtime?.close();
  await s3?.close();
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  repos.disposeAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('the embedded server with its artifacts in an S3-protocol store (s3rver)', () => {
  it('keeps a built sample image in the bucket under the prefix and hands out S3 presigned upload and part URLs', async () => {
    // Arrange
    const built = await cfsBin(cliEnv(runtime), 'images', 'build-sample', '--name', 'sample-on-s3', '--format', 'json');
    expect(built.err).not.toMatch(/^Error/m);
    const image = JSON.parse(built.out) as ImageView;
    const created = await api<ImageView>('POST', '/apis/ims/v3/images', { name: 'to-upload', arch: 'x86_64' });
    // Act
    const upload = await api<{ url: string }>('POST', `/apis/ims/v3/images/${created.body.id}/artifacts/rootfs/upload-url`);
    const multipart = await api<{ upload_id: string }>('POST', `/apis/ims/v3/images/${created.body.id}/artifacts/rootfs/multipart`, { size: 12 * 1024 * 1024 });
    const parts = await api<{ parts: { url: string }[] }>('POST', `/apis/ims/v3/images/${created.body.id}/artifacts/rootfs/multipart/${multipart.body.upload_id}/parts`, {
      parts: [{ number: 1, sha256: 'a'.repeat(64) }],
    });
    const keys = await bucketKeys();
    // Assert
    expect(built.code).toBe(0);
    expect(image.link?.path).toBe(`s3://boot-images/${image.id}/manifest.json`);
    expect(keys).toEqual(expect.arrayContaining([`${PREFIX}/boot-images/${image.id}/manifest.json`, `${PREFIX}/boot-images/${image.id}/rootfs`]));
    expect(keys.every((key) => key.startsWith(`${PREFIX}/`))).toBe(true);
    expect(upload.status).toBe(200);
    expect(upload.body.url.startsWith(`${endpoint}/${BUCKET}/${PREFIX}/`)).toBe(true);
    expect(new URL(upload.body.url).searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(multipart.status).toBe(201);
    expect(parts.status).toBe(200);
    expect(parts.body.parts[0]!.url.startsWith(`${endpoint}/${BUCKET}/${PREFIX}/`)).toBe(true);
    expect(new URL(parts.body.parts[0]!.url).searchParams.get('uploadId')).toBe(multipart.body.upload_id);
    expect(existsSync(join(runtime.dataDir, 'artifacts'))).toBe(false);
  });

  it('runs a real session to completion with the runner reading and writing the bucket, and registers its result there', async () => {
    // Arrange
    const built = await cfsBin(cliEnv(runtime), 'images', 'build-sample', '--name', 'base-on-s3', '--format', 'json');
    const base = JSON.parse(built.out) as ImageView;
    const layer = repos.with({
      'site.yml': ['- hosts: cfs_image', '  gather_facts: false', '  tasks:', '    - copy: { dest: /etc/stored-in.txt, content: "s3\\n" }'].join('\n'),
    });
    expect((await api('PUT', '/apis/cfs/v3/configurations/on-s3', { layers: [{ name: 'one', clone_url: layer.url, commit: layer.commit, playbook: 'site.yml' }] })).status).toBe(200);
    // Act
    const created = await api('POST', '/apis/cfs/v3/sessions', {
      name: 'on-s3',
      configuration_name: 'on-s3',
      target: { definition: 'image', groups: [{ name: 'Compute', members: [base.id] }], image_map: [{ source_id: base.id, result_name: 'customized-on-s3' }] },
    });
    const done = await waitForSession('on-s3', 240_000);
    // Assert
    expect(created.status).toBe(201);
    expect(done.status.session.succeeded).toBe('true');
    const resultId = done.status.artifacts[0]!.result_id!;
    const result = await resultImage(resultId, 10_000);
    expect(result.name).toBe('customized-on-s3');
    expect(result.link?.path).toBe(`s3://boot-images/${resultId}/manifest.json`);
    const keys = await bucketKeys();
    expect(keys).toContain(`${PREFIX}/boot-images/${resultId}/rootfs`);
    expect(keys.some((key) => key.startsWith(`${PREFIX}/sessions/on-s3/`))).toBe(true);
    expect(keys.every((key) => key.startsWith(`${PREFIX}/`))).toBe(true);
    const squashfs = join(dir, 'result.squashfs');
    writeFileSync(squashfs, await objectBytes(`${PREFIX}/boot-images/${resultId}/rootfs`));
    expect(execFileSync('unsquashfs', ['-cat', squashfs, 'etc/stored-in.txt'], { encoding: 'utf8' })).toBe('s3\n');
    expect(existsSync(join(runtime.dataDir, 'artifacts'))).toBe(false);
  }, 300_000);

  it('refuses to start on a bucket it cannot reach, in one line naming the store', async () => {
    // Arrange
    const missing = parseS3StoreLocation('s3://no-such-bucket/cfs', endpoint, process.env);
    // Act
    const started = startEmbeddedRuntime({ dataDir: join(dir, 'refused'), port: 0, artifactStore: missing });
    // Assert
    await expect(started).rejects.toThrow(`the artifact store s3://no-such-bucket/cfs at ${endpoint} cannot be used: no such bucket`);
  });

  it('refuses to start with credentials the store does not accept, saying where they come from', async () => {
    // Arrange: s3rver knows one access key (it does not check v4 signatures, so a wrong secret would pass).
    const location = parseS3StoreLocation(`s3://${BUCKET}/${PREFIX}`, endpoint, process.env);
    process.env.AWS_ACCESS_KEY_ID = 'NOT-A-KNOWN-KEY';
    // Act
    const outcome = await startEmbeddedRuntime({ dataDir: join(dir, 'refused-key'), port: 0, artifactStore: location }).then(
      async (started) => {
        await started.close();
        return 'started';
      },
      (error: unknown) => (error as Error).message,
    );
    process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.AWS_ACCESS_KEY_ID;
    // Assert
    expect(outcome).toBe(
      `the artifact store s3://${BUCKET}/${PREFIX} at ${endpoint} cannot be used: access denied (the credentials come from the standard AWS chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role)`,
    );
  });

  it('refuses malformed --artifact-store and --s3-endpoint values in one line, before touching the data directory', async () => {
    // Arrange
    const data = join(dir, 'never-created');
    const server = (...flags: string[]) => cfsBin({}, 'server', '--port', '0', '--data-dir', data, ...flags);
    // Act
    const scheme = await server('--artifact-store', 'gs://site-cfs');
    const bucket = await server('--artifact-store', 's3://Site_CFS/cfs');
    const prefix = await server('--artifact-store', 's3://site-cfs/cfs//artifacts');
    const url = await server('--artifact-store', 's3://site-cfs', '--s3-endpoint', 'ftp://minio:9000');
    const alone = await server('--s3-endpoint', endpoint);
    // Assert
    expect([scheme.code, bucket.code, prefix.code, url.code, alone.code]).toEqual([1, 1, 1, 1, 1]);
    expect(scheme.err).toBe("Error: --artifact-store takes s3://BUCKET or s3://BUCKET/prefix, not 'gs://site-cfs'\n");
    expect(bucket.err).toBe("Error: --artifact-store: 'Site_CFS' is not an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)\n");
    expect(prefix.err).toBe("Error: --artifact-store: the prefix 'cfs//artifacts' must be names separated by single slashes (no spaces, '.' or '..')\n");
    expect(url.err).toBe("Error: --s3-endpoint takes an http(s) URL such as https://s3.example.org:8080, not 'ftp://minio:9000'\n");
    expect(alone.err).toBe('Error: --s3-endpoint goes with --artifact-store s3://BUCKET[/prefix]\n');
    expect(existsSync(data)).toBe(false);
  });

  it('refuses to start `cfs server` on an unreachable bucket with one line, leaving the data directory free', async () => {
    // Arrange
    const data = join(dir, 'cli-refused');
    // Act
    const refused = await cfsBin({}, 'server', '--port', '0', '--data-dir', data, '--artifact-store', 's3://no-such-bucket', '--s3-endpoint', endpoint);
    // Assert
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(`Error: the artifact store s3://no-such-bucket at ${endpoint} cannot be used: no such bucket\n`);
    expect(existsSync(join(data, 'server.pid'))).toBe(false);
  });
});
