import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbImageRegistry } from '../../functions/adapters/dynamodb/dynamodb-image-registry.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { createImage, deleteImage, type ImageDeps } from '../../functions/core/images/index.ts';
import { listImagePage } from '../../functions/core/images/read-images.ts';
import type { ImageManifest, ImageRecord } from '../../functions/core/model/image.ts';
import type { ArtifactStore } from '../../functions/ports/artifact-store.ts';
import { sessionsOf } from '../core/images-fakes.ts';

const TABLE = 'refs';
const KERNEL_TYPE = 'application/vnd.cray.image.kernel';
const ROOTFS_TYPE = 'application/vnd.cray.image.rootfs.squashfs';

/** Counts every call a client or store receives, by name (a DynamoDB command's class, a store method). */
class Counter {
  readonly calls = new Map<string, number>();
  count(name: string) {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
  }
  reset() {
    this.calls.clear();
  }
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.calls.entries()].sort());
  }
  get total(): number {
    return [...this.calls.values()].reduce((a, b) => a + b, 0);
  }
}

/** The document client, counting each command it sends and letting a test hold one back (`before`). */
function countingClient(client: DynamoDBDocumentClient, counter: Counter, before?: (command: { input: Record<string, unknown> }) => Promise<void>): DynamoDBDocumentClient {
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver) as unknown;
      return async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        counter.count(command.constructor.name);
        await before?.(command);
        return target.send(command as never);
      };
    },
  });
}

/** The artifact store, counting each read (get, head, list, measured). */
function countingStore(store: ArtifactStore, counter: Counter): ArtifactStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || !['get', 'head', 'list', 'measured'].includes(String(property))) {
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      }
      return (...args: unknown[]) => {
        counter.count(`store.${String(property)}`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function manifestOf(artifacts: Array<{ key: string; type: string }>): ImageManifest {
  return {
    version: '1.0',
    created: '2026-12-06T00:00:00Z',
    artifacts: artifacts.map(({ key, type }) => ({ link: { path: `s3://${key}`, type: 's3' }, type, md5: 'a'.repeat(32), sha256: 'b'.repeat(64), size: 1 })),
  };
}

describe('the artifact reference index on dynalite', () => {
  let dynamo: LocalDynamo;
  let root: string;
  let store: FsArtifactStore;
  let counter: Counter;
  let hold: ((command: { input: Record<string, unknown> }) => Promise<void>) | undefined;
  let deps: ImageDeps;
  let registry: DynamoDbImageRegistry;

  beforeEach(async () => {
    dynamo = await startLocalDynamo({ tableName: TABLE });
    root = await mkdtemp(join(tmpdir(), 'image-refs-'));
    store = new FsArtifactStore(join(root, 'artifacts'), { baseUrl: 'http://127.0.0.1:9/artifacts' });
    counter = new Counter();
    hold = undefined;
    registry = new DynamoDbImageRegistry(
      countingClient(dynamo.documents, counter, (command) => hold?.(command) ?? Promise.resolve()),
      TABLE,
    );
    deps = {
      images: registry,
      artifacts: countingStore(store, counter),
      sessions: sessionsOf([]),
      events: { publish: async () => undefined },
      clock: { now: () => new Date('2026-12-06T12:00:00Z') },
    };
  });
  afterEach(async () => {
    await dynamo.close();
    await rm(root, { recursive: true, force: true });
  });

  /** Writes a manifest listing `artifacts` (each object written too) and registers an image linking it, through the use case. */
  async function register(id: string, artifacts: Array<{ key: string; type: string }>): Promise<ImageRecord> {
    for (const { key } of artifacts) if (!(await store.head(key))) await store.put(key, `bytes of ${key}`);
    const manifestKey = `boot-images/${id}/manifest.json`;
    await store.put(manifestKey, JSON.stringify(manifestOf(artifacts)));
    return createImage(deps, { name: `image-${id}`, link: { path: `s3://${manifestKey}`, type: 's3' } }, { id });
  }

  /** `count` images sharing one kernel, created through the registry in parallel batches; their manifests are not needed by a delete. */
  async function seed(count: number, sharedKernel: string) {
    for (let start = 0; start < count; start += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, count - start) }, (_, i) => {
          const id = `seed-${String(start + i).padStart(5, '0')}`;
          const manifestKey = `boot-images/${id}/manifest.json`;
          return registry.create({
            id,
            name: `seed-${id}`,
            created: '2026-12-06T00:00:00Z',
            arch: 'x86_64',
            link: { path: `s3://${manifestKey}`, type: 's3' },
            metadata: {},
            artifact_keys: [manifestKey, sharedKernel],
          });
        }),
      );
    }
  }

  async function deleteCost(images: number): Promise<{ calls: Record<string, number>; total: number }> {
    // Arrange
    await store.put('boot-images/base/kernel', 'shared kernel');
    await seed(images - 1, 'boot-images/base/kernel');
    await register('victim', [
      { key: 'boot-images/victim/rootfs', type: ROOTFS_TYPE },
      { key: 'boot-images/base/kernel', type: KERNEL_TYPE },
    ]);
    await store.put('boot-images/victim/uploads/initrd', 'never registered');
    // The one-time indexing of a table (none of these records predates the index) is not a delete's cost.
    await registry.markReferencesIndexed();
    counter.reset();
    // Act
    await deleteImage(deps, 'victim');
    // Assert
    expect(await store.head('boot-images/victim/rootfs')).toBeUndefined();
    expect(await store.head('boot-images/victim/uploads/initrd')).toBeUndefined();
    expect(await store.head('boot-images/victim/manifest.json')).toBeUndefined();
    expect(await store.head('boot-images/base/kernel')).toBeDefined();
    return { calls: counter.snapshot(), total: counter.total };
  }

  it('deletes an image with the same store and table reads at 10 and at 2,000 registered images', { timeout: 300_000 }, async () => {
    // Arrange / Act
    const small = await deleteCost(10);
    await dynamo.close();
    dynamo = await startLocalDynamo({ tableName: TABLE });
    await rm(root, { recursive: true, force: true });
    root = await mkdtemp(join(tmpdir(), 'image-refs-'));
    store = new FsArtifactStore(join(root, 'artifacts'), { baseUrl: 'http://127.0.0.1:9/artifacts' });
    registry = new DynamoDbImageRegistry(countingClient(dynamo.documents, counter), TABLE);
    deps = { ...deps, images: registry, artifacts: countingStore(store, counter) };
    const large = await deleteCost(2000);
    // Assert
    expect(large.calls).toEqual(small.calls);
    expect(small.total).toBeLessThan(25);
  });

  it('removes a shared kernel only with the last image that references it', async () => {
    // Arrange
    const kernel = { key: 'boot-images/source/kernel', type: KERNEL_TYPE };
    await register('source', [{ key: 'boot-images/source/rootfs', type: ROOTFS_TYPE }, kernel]);
    await register('result', [{ key: 'boot-images/result/rootfs', type: ROOTFS_TYPE }, kernel]);
    // Act
    await deleteImage(deps, 'source');
    const afterSource = await store.head(kernel.key);
    await deleteImage(deps, 'result');
    // Assert
    expect(afterSource).toBeDefined();
    expect(await store.head('boot-images/source/rootfs')).toBeUndefined();
    expect(await store.head(kernel.key)).toBeUndefined();
  });

  it('keeps the kernel when a registration references it between the delete\'s claim and its look for references', async () => {
    // Arrange
    const kernel = { key: 'boot-images/source/kernel', type: KERNEL_TYPE };
    await register('source', [{ key: 'boot-images/source/rootfs', type: ROOTFS_TYPE }, kernel]);
    let registration: Promise<ImageRecord> | undefined;
    hold = async (command) => {
      const values = command.input.ExpressionAttributeValues as Record<string, unknown> | undefined;
      if (registration === undefined && values?.[':p'] === `ARTIFACT#${kernel.key}`) {
        hold = undefined;
        // The claim is written; the registration writes its reference before the delete looks.
        registration = register('result', [{ key: 'boot-images/result/rootfs', type: ROOTFS_TYPE }, kernel]);
        const reference = new GetCommand({ TableName: TABLE, Key: { pk: `ARTIFACT#${kernel.key}`, sk: 'REF#result' }, ConsistentRead: true });
        while (!(await dynamo.documents.send(reference)).Item) await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    // Act
    await deleteImage(deps, 'source');
    const result = await registration!;
    // Assert
    expect(result.artifact_keys).toContain(kernel.key);
    expect(await store.head(kernel.key)).toBeDefined();
    expect(await store.head('boot-images/source/rootfs')).toBeUndefined();
  });

  it('refuses a registration that references a kernel its last image\'s delete already removed, and stores nothing', async () => {
    // Arrange
    const kernel = { key: 'boot-images/source/kernel', type: KERNEL_TYPE };
    await register('source', [{ key: 'boot-images/source/rootfs', type: ROOTFS_TYPE }, kernel]);
    // The registration checked the kernel's bytes before the delete (they are put back here to say so).
    await deleteImage(deps, 'source');
    await store.put(kernel.key, 'bytes a slow registration had checked');
    // Act
    const attempt = register('late', [{ key: 'boot-images/late/rootfs', type: ROOTFS_TYPE }, kernel]);
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'ConflictError', message: expect.stringContaining(kernel.key) });
    expect(await registry.get('late', { includePending: true })).toBeUndefined();
    // No reference of the refused image stayed behind: the kernel's claim still frees it.
    expect(await registry.claimUnreferenced(kernel.key)).toBe(true);
  });

  it('indexes images stored before the index once, and then deletes by it', async () => {
    // Arrange: two images as the previous version stored them (no artifact_keys, no name index, no references).
    const kernel = { key: 'boot-images/old-a/kernel', type: KERNEL_TYPE };
    for (const id of ['old-a', 'old-b']) {
      const manifestKey = `boot-images/${id}/manifest.json`;
      await store.put(`boot-images/${id}/rootfs`, 'rootfs');
      await store.put(manifestKey, JSON.stringify(manifestOf([{ key: `boot-images/${id}/rootfs`, type: ROOTFS_TYPE }, kernel])));
      const doc: ImageRecord = { id, name: `legacy-${id}`, created: '2026-01-01T00:00:00Z', arch: 'x86_64', link: { path: `s3://${manifestKey}`, type: 's3' }, metadata: {} };
      await dynamo.documents.send(
        new PutCommand({ TableName: TABLE, Item: { pk: `IMAGE#${id}`, sk: 'IMAGE', gsi1pk: 'IMAGES', gsi1sk: id, version: 1, doc } }),
      );
    }
    await store.put(kernel.key, 'kernel');
    // Act
    const listed = await listImagePage(deps, { name_prefix: ['legacy-'] });
    await deleteImage(deps, 'old-a');
    const kernelAfterFirst = await store.head(kernel.key);
    await deleteImage(deps, 'old-b');
    // Assert
    expect(listed.images.map((image) => image.id)).toEqual(['old-a', 'old-b']);
    expect(await registry.referencesIndexed()).toBe(true);
    expect(kernelAfterFirst).toBeDefined();
    expect(await store.head(kernel.key)).toBeUndefined();
  });
});
