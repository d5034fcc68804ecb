import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, TransientError } from '../../functions/core/errors.ts';
import { RecordCache } from '../../functions/adapters/dynamodb/record-cache.ts';
import { RecordTable } from '../../functions/adapters/dynamodb/record-table.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';

// The sole-writer cache of RecordTable (record-cache.ts) on dynalite: what it saves, and that
// racing writers never leave it older than the table.

interface Doc {
  name: string;
  n: number;
  nested?: { list: number[] };
}

describe('RecordTable with a sole-writer cache', () => {
  let dynamo: LocalDynamo;
  let reads = 0;
  let prefix = 0;

  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: 'cache' });
    dynamo.documents.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetItemCommand') reads++;
        return next(args);
      },
      { step: 'initialize', name: 'countReads' },
    );
  });
  afterAll(() => dynamo.close());

  const tables = () => {
    const kind = 'CONFIG' as const;
    const id = (d: Doc) => d.name;
    return {
      cached: new RecordTable<Doc>(dynamo.documents, 'cache', kind, id, 'doc', undefined, { soleWriter: true }),
      plain: new RecordTable<Doc>(dynamo.documents, 'cache', kind, id, 'doc'),
    };
  };
  const name = (label: string) => `${label}-${++prefix}`;

  it('serves a record it created or updated without reading the table, and a missing one read once', async () => {
    // Arrange
    const { cached } = tables();
    const id = name('served');
    await cached.create({ name: id, n: 1 });
    reads = 0;
    // Act
    const first = await cached.get(id);
    const updated = await cached.update(id, (d) => ({ ...d, n: d.n + 1 }));
    const second = await cached.get(id);
    const missing = [await cached.get(name('absent-1')), await cached.get(name('absent-1'))];
    // Assert
    expect(first).toEqual({ name: id, n: 1 });
    expect(updated).toEqual({ name: id, n: 2 });
    expect(second).toEqual({ name: id, n: 2 });
    expect(missing).toEqual([undefined, undefined]);
    expect(reads).toBe(2);
  });

  it('hands out copies: changing a returned record changes neither the cache nor the table', async () => {
    // Arrange
    const { cached, plain } = tables();
    const id = name('copies');
    await cached.create({ name: id, n: 1, nested: { list: [1] } });
    // Act
    const got = (await cached.get(id))!;
    got.n = 99;
    got.nested!.list.push(2);
    // Assert
    expect(await cached.get(id)).toEqual({ name: id, n: 1, nested: { list: [1] } });
    expect(await plain.get(id)).toEqual({ name: id, n: 1, nested: { list: [1] } });
  });

  it('forgets a deleted record and refuses a second create of a cached one', async () => {
    // Arrange
    const { cached } = tables();
    const id = name('deleted');
    await cached.create({ name: id, n: 1 });
    // Act
    const deleted = await cached.delete(id);
    const afterDelete = await cached.get(id);
    const updateGone = await cached.update(id, (d) => d).catch((error: unknown) => error);
    await cached.create({ name: id, n: 5 });
    const again = await cached.create({ name: id, n: 6 }).catch((error: unknown) => error);
    // Assert
    expect(deleted).toBe(true);
    expect(afterDelete).toBeUndefined();
    expect(updateGone).toBeInstanceOf(NotFoundError);
    expect(again).toBeInstanceOf(ConflictError);
    expect(await cached.get(id)).toEqual({ name: id, n: 5 });
  });

  it('never ends older than the table when updates, deletes, creates and reads race', async () => {
    // Arrange: a few records hit by many concurrent operations in random order.
    const { cached, plain } = tables();
    const ids = Array.from({ length: 4 }, () => name('race'));
    let seed = 7;
    const random = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % k);
    const operation = async () => {
      const id = ids[random(ids.length)]!;
      const pick = random(10);
      try {
        if (pick < 5) await cached.update(id, (d) => ({ ...d, n: d.n + 1 }));
        else if (pick < 6) await cached.delete(id);
        else if (pick < 8) await cached.create({ name: id, n: 0 });
        else await cached.get(id);
      } catch (error) {
        // Losing an update race ten times in a row is an answer too ("try again").
        if (!(error instanceof NotFoundError || error instanceof ConflictError || error instanceof TransientError)) throw error;
      }
    };
    // Act
    for (let round = 0; round < 25; round++) await Promise.all(Array.from({ length: 12 }, operation));
    // Assert
    for (const id of ids) expect(await cached.get(id)).toEqual(await plain.get(id));
  });

  it('takes a record just read as the current one for an update, and reads again when it was stale', async () => {
    // Arrange
    const { plain } = tables();
    const id = name('known');
    await plain.create({ name: id, n: 1 });
    const known = (await plain.get(id))!;
    reads = 0;
    // Act
    await plain.update(id, (d) => ({ ...d, n: d.n + 1 }), known);
    const readsFresh = reads;
    await plain.update(id, (d) => ({ ...d, n: d.n + 10 }), known);
    // Assert
    expect(readsFresh).toBe(0);
    expect(reads).toBe(1);
    expect(await plain.get(id)).toEqual({ name: id, n: 12 });
  });
});

describe('the sole-writer premise', () => {
  it('refuses a second embedded database on a directory one already holds', async () => {
    // Arrange
    const path = mkdtempSync(join(tmpdir(), 'cfs-sole-writer-'));
    const first = await startLocalDynamo({ path, tableName: 'cfs' });
    // Act
    const second = await startLocalDynamo({ path, tableName: 'cfs' }).then(
      async (opened) => (await opened.close(), undefined),
      (error: unknown) => error as Error,
    );
    await first.close();
    rmSync(path, { recursive: true, force: true });
    // Assert
    expect(second).toBeInstanceOf(Error);
  });
});

describe('RecordCache under interleavings the table rarely produces', () => {
  const v = (n: number) => ({ doc: { name: 'r', n }, version: n });

  it('drops what a write stored when a later write of the record began before it ended', () => {
    // Arrange
    const cache = new RecordCache<Doc>();
    const update = cache.writeBegins('r');
    const remove = cache.writeBegins('r');
    // Act: the delete answers first, the older update after it.
    cache.writeEnded('r', remove, null);
    cache.writeEnded('r', update, v(2));
    // Assert
    expect(cache.get('r')).toBeNull();
  });

  it('does not keep a read that a write of the record overlapped, however the two ended', () => {
    // Arrange
    const cache = new RecordCache<Doc>();
    const readFirst = cache.readBegins();
    const write = cache.writeBegins('r');
    const readDuring = cache.readBegins();
    // Act
    cache.writeEnded('r', write, v(2));
    cache.readEnded('r', v(1), readFirst);
    cache.readEnded('r', v(1), readDuring);
    // Assert
    expect(cache.get('r')).toEqual(v(2));
  });

  it('keeps a read that began after every write of the record ended', () => {
    // Arrange
    const cache = new RecordCache<Doc>();
    cache.writeEnded('r', cache.writeBegins('r'));
    const read = cache.readBegins();
    // Act
    cache.readEnded('r', v(3), read);
    // Assert
    expect(cache.get('r')).toEqual(v(3));
  });

  it('keeps at most its bound of records and does not keep reads older than bookkeeping it dropped', () => {
    // Arrange
    const cache = new RecordCache<Doc>(2);
    const oldRead = cache.readBegins();
    // Act
    for (const id of ['a', 'b', 'c', 'd']) cache.writeEnded(id, cache.writeBegins(id), { doc: { name: id, n: 1 }, version: 1 });
    cache.readEnded('a', { doc: { name: 'a', n: 0 }, version: 0 }, oldRead);
    // Assert
    expect(['a', 'b', 'c', 'd'].map((id) => cache.get(id)?.doc.name)).toEqual([undefined, undefined, 'c', 'd']);
  });
});
