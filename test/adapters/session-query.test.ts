import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbSessionStore, listingReadBudget } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { sessionItems } from '../../functions/adapters/dynamodb/session-index.ts';
import { ensureTableSchema } from '../../functions/adapters/dynamodb/table-migration.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { sessionMatches } from '../../functions/core/sessions/filters.ts';
import type { SessionFilter } from '../../functions/ports/session-store.ts';
import { listedSession, seedSessions } from '../helpers/listing-seed.ts';

/** What the store's queries read, from DynamoDB's own answers (ScannedCount, ConsumedCapacity). */
interface Reads {
  queries: number;
  scanned: number;
  capacity: number;
}

/** A document client on its own DynamoDB client whose Query/BatchGet answers are counted. */
function countingDocuments(endpoint: string): { documents: DynamoDBDocumentClient; reads: Reads; reset(): void } {
  const client = new DynamoDBClient({ endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const reads: Reads = { queries: 0, scanned: 0, capacity: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as Record<string, unknown>;
      if (context.commandName === 'QueryCommand' || context.commandName === 'BatchGetItemCommand') input.ReturnConsumedCapacity = 'TOTAL';
      const out = await next(args);
      const output = out.output as { ScannedCount?: number; ConsumedCapacity?: { CapacityUnits?: number } | Array<{ CapacityUnits?: number }> };
      if (context.commandName === 'QueryCommand') {
        reads.queries++;
        reads.scanned += output.ScannedCount ?? 0;
      }
      const consumed = Array.isArray(output.ConsumedCapacity) ? output.ConsumedCapacity : output.ConsumedCapacity ? [output.ConsumedCapacity] : [];
      reads.capacity += consumed.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
      return out;
    },
    { step: 'initialize', name: 'countReads' },
  );
  return {
    documents,
    reads,
    reset: () => Object.assign(reads, { queries: 0, scanned: 0, capacity: 0 }),
  };
}

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-26T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** 10,000 sessions: every 10th running, the rest complete (every 7th of those failed); ages spread over 50 days; some automation tags. */
function largeFleet(): SessionRecord[] {
  return Array.from({ length: 10_000 }, (_, i) => {
    const running = i % 10 === 0;
    const tags: Record<string, string> = {};
    if (i % 20 === 3) tags.automation = 'nightly';
    if (i % 20 === 3) tags.site = i % 40 === 3 ? 'a' : 'b';
    if (i % 500 === 7) tags.owner = 'ops';
    return listedSession(`image-${String(i).padStart(5, '0')}${i % 250 === 0 ? '-rebuild' : ''}`, {
      status: running ? 'running' : 'complete',
      succeeded: running ? 'none' : i % 7 === 0 ? 'false' : 'true',
      start: iso(NOW - ((i * 431) % 50) * DAY - (i % 3600) * 1000),
      tags,
    });
  });
}

/** Every page of a listing, following `next` as a client does; the reads of each request. */
async function allPages(store: DynamoDbSessionStore, counter: ReturnType<typeof countingDocuments>, filter: SessionFilter, limit: number) {
  const names: string[] = [];
  const scannedPerPage: number[] = [];
  let after: string | undefined;
  do {
    counter.reset();
    const page = await store.query({ filter, limit, after });
    scannedPerPage.push(counter.reads.scanned);
    expect(page.sessions.length).toBeLessThanOrEqual(limit);
    names.push(...page.sessions.map((s) => s.name));
    after = page.next;
  } while (after !== undefined);
  return { names, scannedPerPage };
}

const expected = (fleet: SessionRecord[], filter: SessionFilter) =>
  fleet.filter((s) => sessionMatches(s, filter)).map((s) => s.name).sort();

describe('session listing served by DynamoDB indexes (dynalite)', () => {
  let dynamo: LocalDynamo;
  let counter: ReturnType<typeof countingDocuments>;
  let small: DynamoDbSessionStore;
  let large: DynamoDbSessionStore;
  const fleet = largeFleet();

  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: 'small-table' });
    await ensureTableSchema(dynamo.client, 'large-table');
    await seedSessions(dynamo.documents, 'small-table', Array.from({ length: 100 }, (_, i) => listedSession(`small-${String(i).padStart(3, '0')}`, { status: 'running' })));
    await seedSessions(dynamo.documents, 'large-table', fleet);
    counter = countingDocuments(dynamo.endpoint);
    small = new DynamoDbSessionStore(counter.documents, 'small-table');
    large = new DynamoDbSessionStore(counter.documents, 'large-table');
  }, 120_000);
  afterAll(async () => dynamo.close());

  it('reads 100 items for a page of 100 running sessions with 100 sessions in the table, and 101 with 10,000 (a whole-table read: 10,000)', async () => {
    // Arrange
    const filter: SessionFilter = { status: 'running' };
    // Act
    counter.reset();
    const smallPage = await small.query({ filter, limit: 100 });
    const smallReads = { ...counter.reads };
    counter.reset();
    const largePage = await large.query({ filter, limit: 100 });
    const largeReads = { ...counter.reads };
    counter.reset();
    await large.list();
    const wholeTable = { ...counter.reads };
    // Assert
    console.log(
      `page of 100 running sessions: 100 sessions in the table -> ScannedCount ${smallReads.scanned}, ${smallReads.capacity} RCU; ` +
        `10,000 sessions -> ScannedCount ${largeReads.scanned}, ${largeReads.capacity} RCU; reading every session: ScannedCount ${wholeTable.scanned}`,
    );
    expect(smallPage.sessions).toHaveLength(100);
    expect(largePage.sessions).toHaveLength(100);
    expect(largePage.sessions.every((s) => s.status.session.status === 'running')).toBe(true);
    expect(smallReads.scanned).toBe(100);
    expect(largeReads.scanned).toBe(101);
    expect(largeReads.queries).toBe(1);
    expect(largeReads.capacity).toBeLessThanOrEqual(smallReads.capacity * 1.1);
    expect(wholeTable.scanned).toBe(10_000);
  });

  it('pages in name order from after_id, which need not name a stored session, until next is absent', async () => {
    // Arrange
    const filter: SessionFilter = { status: 'running' };
    // Act
    const { names } = await allPages(large, counter, filter, 300);
    const fromGap = await large.query({ filter, limit: 3, after: 'image-00005' });
    // Assert
    expect(names).toEqual(expected(fleet, filter));
    expect(names).toHaveLength(1000);
    expect(fromGap.sessions.map((s) => s.name)).toEqual(['image-00010', 'image-00020', 'image-00030']);
    expect(fromGap.next).toBe('image-00030');
  });

  it.each<[string, SessionFilter]>([
    ['status and succeeded', { status: 'complete', succeeded: 'false' }],
    ['succeeded alone', { succeeded: 'false' }],
    ['min_age', { status: 'complete', startedBefore: iso(NOW - 45 * DAY) }],
    ['max_age', { startedAfter: iso(NOW - 2 * DAY) }],
    ['both ages', { status: 'running', startedBefore: iso(NOW - 10 * DAY), startedAfter: iso(NOW - 12 * DAY) }],
    ['a tag', { tags: { automation: 'nightly' } }],
    ['two tags and a status', { tags: { automation: 'nightly', site: 'a' }, status: 'complete' }],
    ['a tag, an outcome and an age', { tags: { site: 'b' }, succeeded: 'true', startedBefore: iso(NOW - 20 * DAY) }],
    ['name_contains', { nameContains: 'rebuild' }],
    ['a tag nobody has', { tags: { automation: 'weekly' } }],
  ])('returns exactly the sessions matching %s across its pages', async (_what, filter) => {
    // Act
    const { names } = await allPages(large, counter, filter, 250);
    // Assert
    expect(names).toEqual(expected(fleet, filter));
  });

  it('reads only the tag partition for a tag filter: a page of 100 nightly sessions examines 101 items', async () => {
    // Act
    counter.reset();
    const page = await large.query({ filter: { tags: { automation: 'nightly' } }, limit: 100 });
    // Assert
    expect(page.sessions).toHaveLength(100);
    expect(counter.reads.scanned).toBe(101);
  });

  it('bounds a name_contains listing by the read budget per request: short pages, each reading at most the budget, reach every match', async () => {
    // Arrange
    const filter: SessionFilter = { nameContains: 'rebuild' };
    // Act
    const { names, scannedPerPage } = await allPages(large, counter, filter, 10);
    // Assert
    console.log(`name_contains over 10,000 sessions, limit 10: ${scannedPerPage.length} requests reading ${scannedPerPage.join(', ')} items`);
    expect(names).toEqual(expected(fleet, filter));
    expect(Math.max(...scannedPerPage)).toBeLessThanOrEqual(listingReadBudget(10));
    expect(scannedPerPage.length).toBeGreaterThan(names.length / 10);
  });

  it('finds every session to bulk delete by status and age reading only that age range of the status', async () => {
    // Arrange
    const filter: SessionFilter = { status: 'complete', startedBefore: iso(NOW - 47 * DAY) };
    const want = expected(fleet, filter);
    // Act
    counter.reset();
    const names = await large.matchingNames(filter);
    // Assert
    expect(names.sort()).toEqual(want);
    expect(want.length).toBeGreaterThan(100);
    expect(counter.reads.scanned).toBe(want.length);
  });

  it.each<[string, SessionFilter]>([
    ['a tag', { tags: { owner: 'ops' } }],
    ['status only', { status: 'running', succeeded: 'none' }],
    ['younger than a day, any status', { startedAfter: iso(NOW - DAY) }],
    ['an empty age range', { status: 'complete', startedBefore: iso(NOW - 20 * DAY), startedAfter: iso(NOW - 10 * DAY) }],
  ])('finds every session to bulk delete by %s', async (_what, filter) => {
    // Act
    const names = await large.matchingNames(filter);
    // Assert
    expect(names.sort()).toEqual(expected(fleet, filter));
  });
});

describe('session items and tag items written by the store (dynalite)', () => {
  let dynamo: LocalDynamo;
  let store: DynamoDbSessionStore;
  const partition = async (name: string) =>
    (
      await dynamo.documents.send(
        new QueryCommand({ TableName: 'items', KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `SESSION#${name}` } }),
      )
    ).Items ?? [];

  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: 'items' });
    store = new DynamoDbSessionStore(dynamo.documents, 'items');
  });
  afterAll(async () => dynamo.close());

  it('writes exactly the items the bulk loader writes: the session item and one tag item per tag', async () => {
    // Arrange
    const session = listedSession('tagged', { tags: { automation: 'nightly', site: 'a' } });
    // Act
    await store.create(session);
    // Assert
    const stored = await partition('tagged');
    expect(stored.sort((a, b) => (a.sk < b.sk ? -1 : 1))).toEqual(sessionItems(session).sort((a, b) => ((a.sk as string) < (b.sk as string) ? -1 : 1)));
  });

  it('moves the index attributes with the status and the tag items with the tags', async () => {
    // Arrange
    await store.create(listedSession('moving', { status: 'pending', tags: { automation: 'nightly' } }));
    // Act
    await store.update('moving', (s) => ({ ...s, tags: { automation: 'weekly' }, status: { ...s.status, session: { ...s.status.session, status: 'running' } } }));
    // Assert
    expect((await store.query({ filter: { status: 'running' }, limit: 10 })).sessions.map((s) => s.name)).toContain('moving');
    expect((await store.query({ filter: { status: 'pending' }, limit: 10 })).sessions.map((s) => s.name)).not.toContain('moving');
    expect((await store.query({ filter: { tags: { automation: 'weekly' } }, limit: 10 })).sessions.map((s) => s.name)).toEqual(['moving']);
    expect((await store.query({ filter: { tags: { automation: 'nightly' } }, limit: 10 })).sessions.map((s) => s.name)).not.toContain('moving');
    expect(await partition('moving')).toHaveLength(2);
  });

  it('gives the tag items the session\'s TTL attribute when the session gets one on completion', async () => {
    // Arrange
    await store.create(listedSession('expiring', { status: 'running', tags: { automation: 'nightly', site: 'a' } }));
    // Act
    await store.update('expiring', (s) => ({ ...s, expires_at: 1_900_000_000, status: { ...s.status, session: { ...s.status.session, status: 'complete' } } }));
    // Assert
    const items = await partition('expiring');
    expect(items).toHaveLength(3);
    expect(items.map((i) => i.expires_at)).toEqual([1_900_000_000, 1_900_000_000, 1_900_000_000]);
  });

  it('removes the tag items with the session, and those a refused duplicate wrote', async () => {
    // Arrange
    await store.create(listedSession('twice', { tags: { a: '1' } }));
    // Act
    const duplicate = await store.create(listedSession('twice', { tags: { b: '2' } })).catch((error: Error) => error);
    const afterDuplicate = (await partition('twice')).length;
    const deleted = await store.delete('twice');
    // Assert
    expect(duplicate).toMatchObject({ name: 'ConflictError' });
    expect(afterDuplicate).toBe(2);
    expect(deleted).toBe(true);
    expect(await partition('twice')).toEqual([]);
  });
});
