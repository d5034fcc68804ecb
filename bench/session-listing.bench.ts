/**
 * A page of 100 sessions filtered by status (`GET /apis/cfs/v3/sessions?status=running&limit=100`,
 * over HTTP to the API app on persisted dynalite, as `cfs server` runs it) with 100 sessions in
 * the table and with 10,000, side by side: wall time per request (median and p95 of many) and
 * what DynamoDB read for it (ScannedCount). Goal: the 10,000 page within 1.5x of the 100 page.
 * For scale, the same table read whole (the v2 list, which reads every matching session).
 *
 *   npx tsx bench/session-listing.bench.ts          (or `npm run bench -- session-listing`)
 */
import { serve, type ServerType } from '@hono/node-server';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDbConfigurationStore } from '../functions/adapters/dynamodb/dynamodb-configuration-store.ts';
import { DynamoDbImageRegistry } from '../functions/adapters/dynamodb/dynamodb-image-registry.ts';
import { DynamoDbOptionsStore } from '../functions/adapters/dynamodb/dynamodb-options-store.ts';
import { DynamoDbSessionStore } from '../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../functions/adapters/local/dynalite.ts';
import { GitCliResolver } from '../functions/adapters/local/git-cli-resolver.ts';
import { createApp } from '../functions/api/app.ts';
import { optionDefaultsFrom } from '../functions/core/options/workflow-settings.ts';
import { systemClock } from '../functions/ports/clock.ts';
import type { AppPorts } from '../functions/ports/index.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../functions/steps/step-ports.ts';
import { listedSession, seedSessions } from '../test/helpers/listing-seed.ts';

const REQUESTS = Number(process.env.LISTING_BENCH_REQUESTS ?? 200);
const TABLE = 'cfs';
const PAGE = '/apis/cfs/v3/sessions?status=running&limit=100';

interface Stack {
  dynamo: LocalDynamo;
  server: ServerType;
  url: string;
  /** Query ScannedCount since the last reset. */
  scanned: { value: number };
}

/** The API app on its own persisted dynalite holding `count` sessions (every 10th running). */
async function stack(dir: string, count: number): Promise<Stack> {
  const dynamo = await startLocalDynamo({ path: dir, tableName: TABLE });
  const sessions = Array.from({ length: count }, (_, i) =>
    listedSession(`image-${String(i).padStart(5, '0')}`, {
      status: count === 100 || i % 10 === 0 ? 'running' : 'complete',
      start: new Date(Date.parse('2026-11-26T12:00:00Z') - i * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      tags: i % 20 === 3 ? { automation: 'nightly' } : {},
    }),
  );
  await seedSessions(dynamo.documents, TABLE, sessions);
  const scanned = { value: 0 };
  dynamo.client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (context.commandName === 'QueryCommand') scanned.value += (out.output as { ScannedCount?: number }).ScannedCount ?? 0;
      return out;
    },
    { step: 'initialize', name: 'countScanned' },
  );
  const unused = () => Promise.reject(new Error('not used by the listing bench'));
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

async function get(url: string): Promise<{ ms: number; count: number }> {
  const started = performance.now();
  const response = await fetch(url);
  const body = (await response.json()) as { sessions?: unknown[] } | unknown[];
  if (response.status !== 200) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - started, count: Array.isArray(body) ? body.length : (body.sessions?.length ?? 0) };
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))]!;

/** Alternates the two tables request by request, so both see the same machine load. */
async function measure(small: Stack, large: Stack): Promise<{ small: number[]; large: number[] }> {
  for (let i = 0; i < 20; i++) await Promise.all([get(small.url + PAGE), get(large.url + PAGE)]);
  const out = { small: [] as number[], large: [] as number[] };
  for (let i = 0; i < REQUESTS; i++) {
    out.small.push((await get(small.url + PAGE)).ms);
    out.large.push((await get(large.url + PAGE)).ms);
  }
  return out;
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'cfs-listing-bench-'));
  const stacks: Stack[] = [];
  try {
    const seedStarted = performance.now();
    const small = await stack(join(base, 'small'), 100);
    const large = await stack(join(base, 'large'), 10_000);
    stacks.push(small, large);
    console.log(`session-listing bench: seeded 100 and 10,000 sessions (persisted dynalite) in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);

    for (const s of stacks) s.scanned.value = 0;
    const [one, many] = [await get(small.url + PAGE), await get(large.url + PAGE)];
    const scannedSmall = small.scanned.value;
    const scannedLarge = large.scanned.value;
    const times = await measure(small, large);

    large.scanned.value = 0;
    const whole: number[] = [];
    for (let i = 0; i < 3; i++) whole.push((await get(`${large.url}/apis/cfs/v3/sessions?limit=10000`)).ms);

    const row = (name: string, values: number[], count: number, scanned: number) =>
      `  ${name.padEnd(16)} ${String(count).padStart(5)} sessions  ScannedCount ${String(scanned).padStart(5)}  median ${percentile(values, 50).toFixed(2)} ms  p95 ${percentile(values, 95).toFixed(2)} ms`;
    console.log(`page of 100 running sessions, ${REQUESTS} requests each (alternating):`);
    console.log(row('100 in table', times.small, one.count, scannedSmall));
    console.log(row('10,000 in table', times.large, many.count, scannedLarge));
    console.log(`  for scale: all 10,000 sessions in one answer, median of 3: ${percentile(whole, 50).toFixed(0)} ms (ScannedCount ${large.scanned.value / 3})`);
    const ratio = percentile(times.large, 50) / percentile(times.small, 50);
    console.log(`session-listing bench: median 10,000 / 100 = ${ratio.toFixed(2)}x (goal < 1.5x) ${ratio < 1.5 ? 'PASS' : 'OVER'}`);
  } finally {
    for (const s of stacks) {
      await new Promise<void>((done) => s.server.close(() => done()));
      await s.dynamo.close();
    }
    await rm(base, { recursive: true, force: true });
  }
}

await main();
