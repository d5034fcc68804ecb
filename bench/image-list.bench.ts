/**
 * A page of 100 images (`GET /apis/ims/v3/images?limit=100`, and the same by name prefix,
 * `?name_prefix=compute-&limit=100`), over HTTP to the API app on persisted dynalite as
 * `cfs server` runs it, with 1,000 images in the registry and with 100,000, side by side: wall
 * time per request (median and p95, alternating the two tables) and what DynamoDB read for it
 * (ScannedCount of its Queries). Goal: the 100,000 page within 1.5x of the 1,000 page, in items
 * read and in time. Seeding goes through the registry adapter's own item builder (imageItem),
 * 25 images per BatchWriteItem; its time is printed.
 *
 *   npx tsx bench/image-list.bench.ts          (or `npm run bench -- image-list`)
 */
import { serve, type ServerType } from '@hono/node-server';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDbConfigurationStore } from '../functions/adapters/dynamodb/dynamodb-configuration-store.ts';
import { DynamoDbImageRegistry, imageItem } from '../functions/adapters/dynamodb/dynamodb-image-registry.ts';
import { DynamoDbOptionsStore } from '../functions/adapters/dynamodb/dynamodb-options-store.ts';
import { DynamoDbSessionStore } from '../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../functions/adapters/local/dynalite.ts';
import { GitCliResolver } from '../functions/adapters/local/git-cli-resolver.ts';
import { createApp } from '../functions/api/app.ts';
import type { ImageRecord } from '../functions/core/model/image.ts';
import { optionDefaultsFrom } from '../functions/core/options/workflow-settings.ts';
import { systemClock } from '../functions/ports/clock.ts';
import type { AppPorts } from '../functions/ports/index.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../functions/steps/step-ports.ts';

const REQUESTS = Number(process.env.IMAGE_LIST_BENCH_REQUESTS ?? 200);
const LARGE = Number(process.env.IMAGE_LIST_BENCH_IMAGES ?? 100_000);
const SMALL = 1000;
const TABLE = 'cfs';
const PAGES = { unfiltered: '/apis/ims/v3/images?limit=100', prefix: '/apis/ims/v3/images?name_prefix=compute-&limit=100' };

interface Stack {
  dynamo: LocalDynamo;
  server: ServerType;
  url: string;
  /** Query ScannedCount since the last reset. */
  scanned: { value: number };
}

/** An image as `cfs images import` leaves it; one in three is named `compute-...`, the rest `uan-...` and `login-...`. */
function seedImage(i: number): ImageRecord {
  const kind = ['compute', 'uan', 'login'][i % 3]!;
  const id = `${String(i).padStart(8, '0')}-0000-4000-8000-000000000000`;
  return {
    id,
    name: `${kind}-${String(i).padStart(6, '0')}`,
    created: '2026-12-06T00:00:00Z',
    arch: 'x86_64',
    link: { path: `s3://boot-images/${id}/manifest.json`, etag: 'd41d8cd98f00b204e9800998ecf8427e', type: 's3' },
    metadata: { site: 'bench' },
    artifact_keys: [`boot-images/${id}/manifest.json`, `boot-images/${id}/rootfs`, `boot-images/${id}/kernel`],
  };
}

async function seed(dynamo: LocalDynamo, count: number): Promise<void> {
  const batches: Array<Array<Record<string, unknown>>> = [];
  for (let start = 0; start < count; start += 25) {
    batches.push(Array.from({ length: Math.min(25, count - start) }, (_, i) => imageItem(seedImage(start + i), 1)));
  }
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      let pending: unknown[] | undefined = batches[next++]!.map((Item) => ({ PutRequest: { Item } }));
      while (pending?.length) {
        const out: { UnprocessedItems?: Record<string, unknown[]> } = await dynamo.documents.send(new BatchWriteCommand({ RequestItems: { [TABLE]: pending as never } }));
        pending = out.UnprocessedItems?.[TABLE];
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  // Every record carries its artifact_keys: the registry has nothing to index.
  await new DynamoDbImageRegistry(dynamo.documents, TABLE).markReferencesIndexed();
}

/** The API app on its own persisted dynalite holding `count` images. */
async function stack(dir: string, count: number): Promise<Stack> {
  const dynamo = await startLocalDynamo({ path: dir, tableName: TABLE });
  await seed(dynamo, count);
  const scanned = { value: 0 };
  dynamo.client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (context.commandName === 'QueryCommand') scanned.value += (out.output as { ScannedCount?: number }).ScannedCount ?? 0;
      return out;
    },
    { step: 'initialize', name: 'countScanned' },
  );
  const unused = () => Promise.reject(new Error('not used by the image listing bench'));
  const ports: AppPorts = {
    sessions: new DynamoDbSessionStore(dynamo.documents, TABLE),
    configurations: new DynamoDbConfigurationStore(dynamo.documents, TABLE),
    images: new DynamoDbImageRegistry(dynamo.documents, TABLE),
    artifacts: { put: unused, get: unused, head: unused, delete: unused, list: unused, promote: unused, uploadUrl: unused, downloadUrl: unused },
    workflow: { start: unused, stop: unused },
    events: { publish: async () => undefined },
    git: new GitCliResolver(),
    clock: systemClock,
    options: new DynamoDbOptionsStore(dynamo.documents, TABLE, optionDefaultsFrom(DEFAULT_WORKFLOW_SETTINGS)),
  };
  const server = await new Promise<ServerType>((ready) => {
    const s = serve({ fetch: createApp(ports).fetch, port: 0, hostname: '127.0.0.1' }, () => ready(s));
  });
  return { dynamo, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, scanned };
}

async function get(url: string): Promise<{ ms: number; count: number; link: string | null }> {
  const started = performance.now();
  const response = await fetch(url);
  const body = (await response.json()) as unknown[];
  if (response.status !== 200) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - started, count: body.length, link: response.headers.get('link') };
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))]!;

/** Alternates the two tables request by request, so both see the same machine load. */
async function measure(small: Stack, large: Stack, page: string): Promise<{ small: number[]; large: number[] }> {
  for (let i = 0; i < 20; i++) await Promise.all([get(small.url + page), get(large.url + page)]);
  const out = { small: [] as number[], large: [] as number[] };
  for (let i = 0; i < REQUESTS; i++) {
    out.small.push((await get(small.url + page)).ms);
    out.large.push((await get(large.url + page)).ms);
  }
  return out;
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'cfs-image-list-bench-'));
  const stacks: Stack[] = [];
  try {
    let started = performance.now();
    const small = await stack(join(base, 'small'), SMALL);
    console.log(`image-list bench: seeded ${SMALL.toLocaleString('en')} images in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    started = performance.now();
    const large = await stack(join(base, 'large'), LARGE);
    console.log(`image-list bench: seeded ${LARGE.toLocaleString('en')} images in ${((performance.now() - started) / 1000).toFixed(1)} s (persisted dynalite, 25 per BatchWriteItem, 4 at a time)`);
    stacks.push(small, large);

    let worst = 0;
    for (const [label, page] of Object.entries(PAGES)) {
      for (const s of stacks) s.scanned.value = 0;
      const one = await get(small.url + page);
      const scannedSmall = small.scanned.value;
      const many = await get(large.url + page);
      const scannedLarge = large.scanned.value;
      const times = await measure(small, large, page);
      const row = (name: string, values: number[], count: number, scanned: number, link: string | null) =>
        `  ${name.padEnd(18)} ${String(count).padStart(4)} images${link ? ' + Link' : ''}  items read ${String(scanned).padStart(4)}  median ${percentile(values, 50).toFixed(2)} ms  p95 ${percentile(values, 95).toFixed(2)} ms`;
      console.log(`${label} page (${page}), ${REQUESTS} requests each (alternating):`);
      console.log(row(`${SMALL.toLocaleString('en')} in registry`, times.small, one.count, scannedSmall, one.link));
      console.log(row(`${LARGE.toLocaleString('en')} in registry`, times.large, many.count, scannedLarge, many.link));
      const timeRatio = percentile(times.large, 50) / percentile(times.small, 50);
      const readRatio = scannedLarge / scannedSmall;
      worst = Math.max(worst, timeRatio, readRatio);
      console.log(`  ${label}: items read ${readRatio.toFixed(2)}x, median time ${timeRatio.toFixed(2)}x (goal < 1.5x)`);
    }
    console.log(`image-list bench: worst ratio ${worst.toFixed(2)}x (goal < 1.5x) ${worst < 1.5 ? 'PASS' : 'OVER'}`);
  } finally {
    for (const s of stacks) {
      await new Promise<void>((done) => s.server.close(() => done()));
      await s.dynamo.close();
    }
    await rm(base, { recursive: true, force: true });
  }
}

await main();
