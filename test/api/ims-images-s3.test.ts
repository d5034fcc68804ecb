import { S3Client } from '@aws-sdk/client-s3';
import { serve, type ServerType } from '@hono/node-server';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';
import { DynamoDbImageRegistry } from '../../functions/adapters/dynamodb/dynamodb-image-registry.ts';
import { DynamoDbSessionStore } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { InProcessEventBus } from '../../functions/adapters/local/in-process-event-bus.ts';
import { createApp } from '../../functions/api/app.ts';
import { ApiClient } from '../../functions/cli/api-client.ts';
import { ImagesApi } from '../../functions/cli/images/images-api.ts';
import { importImage } from '../../functions/cli/images/import-image.ts';
import { systemClock } from '../../functions/ports/clock.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { MemoryOptions } from '../helpers/cfs-fakes.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';

let dir: string;
let s3: LocalS3;
let client: S3Client;
let dynamo: LocalDynamo;
let server: ServerType;
let url: string;
let store: S3ArtifactStore;

/** Ports as the AWS composition root has them for images: DynamoDB records, S3 bytes (here dynalite and s3rver). */
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ims-s3-'));
  s3 = await startLocalS3(join(dir, 's3'), ['boot-images']);
  client = s3.client;
  store = new S3ArtifactStore(client);
  dynamo = await startLocalDynamo({ tableName: 'ims-s3' });
  const unused = () => {
    throw new Error('not used by images');
  };
  const ports: AppPorts = {
    images: new DynamoDbImageRegistry(dynamo.documents, 'ims-s3'),
    sessions: new DynamoDbSessionStore(dynamo.documents, 'ims-s3'),
    artifacts: store,
    events: new InProcessEventBus(),
    clock: systemClock,
    configurations: { put: unused, get: unused, list: unused, page: unused, delete: unused },
    workflow: { start: unused, stop: unused },
    git: { resolveBranch: unused },
    options: new MemoryOptions(),
  };
  server = await new Promise((ready) => {
    const s = serve({ fetch: createApp(ports).fetch, port: 0, hostname: '127.0.0.1' }, () => ready(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((done) => server.close(done));
  await dynamo.close();
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the image API with the S3 artifact store', () => {
  it('imports through presigned URLs and registers a manifest whose checksums match the S3 object', async () => {
    // Arrange
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc', 'motd'), 'on S3\n');
    const api = new ImagesApi(new ApiClient({ env: { CFS_API_URL: url } }));
    // Act
    const image = await importImage(api, { name: 'on-s3', arch: 'x86_64', rootfs: tree });
    const manifest = (await (await fetch(`${url}/apis/ims/v3/images/${image.id}/manifest`)).json()) as { artifacts: { link: { path: string }; md5: string; sha256: string }[] };
    const objectBytes: Buffer[] = [];
    for await (const chunk of await store.get(`boot-images/${image.id}/rootfs`)) objectBytes.push(chunk as Buffer);
    const object = Buffer.concat(objectBytes);
    // Assert
    expect(image.link?.path).toBe(`s3://boot-images/${image.id}/manifest.json`);
    expect(manifest.artifacts[0]).toMatchObject({
      link: { path: `s3://boot-images/${image.id}/rootfs` },
      md5: createHash('md5').update(object).digest('hex'),
      sha256: createHash('sha256').update(object).digest('hex'),
    });
    expect(await fetch(`${url}/artifacts/boot-images/${image.id}/rootfs`).then((r) => r.status)).toBe(404);
  });
});
