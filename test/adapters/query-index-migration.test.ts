import { CreateTableCommand, DescribeTableCommand, ListTablesCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbSessionStore } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { backupTableName, ensureTableSchema } from '../../functions/adapters/dynamodb/table-migration.ts';
import { createTableInput, GLOBAL_INDEXES } from '../../functions/adapters/dynamodb/table-schema.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { listedSession } from '../helpers/listing-seed.ts';

/** The table as the version before the listing indexes created it: GSI1 only. */
function legacyTableInput(tableName: string) {
  const current = createTableInput(tableName);
  return {
    ...current,
    AttributeDefinitions: current.AttributeDefinitions.filter((a) => ['pk', 'sk', 'gsi1pk', 'gsi1sk'].includes(a.AttributeName)),
    GlobalSecondaryIndexes: current.GlobalSecondaryIndexes.filter((i) => i.IndexName === 'gsi1'),
  };
}

/** A backup table as the migration makes it: the keys, no indexes. */
function backupTableInput(tableName: string) {
  return {
    TableName: backupTableName(tableName),
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' as const },
      { AttributeName: 'sk', AttributeType: 'S' as const },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' as const },
      { AttributeName: 'sk', KeyType: 'RANGE' as const },
    ],
  };
}

/** Items as the version before wrote them: no status or start-time attributes, no tag items. */
function legacyItems() {
  const sessions = [
    listedSession('old-running', { status: 'running', tags: { automation: 'nightly' } }),
    listedSession('old-complete', { status: 'complete', tags: { automation: 'nightly' } }),
    listedSession('old-untagged', { status: 'complete' }),
  ];
  return [
    ...sessions.map((doc) => ({ pk: `SESSION#${doc.name}`, sk: 'SESSION', gsi1pk: 'SESSIONS', gsi1sk: doc.name, version: 3, doc })),
    { pk: 'CONFIG#c', sk: 'CONFIG', gsi1pk: 'CONFIGS', gsi1sk: 'c', version: 1, doc: { name: 'c', last_updated: '2026-11-01T00:00:00Z', layers: [] } },
  ];
}

describe('bringing a table made before the listing indexes up to date (dynalite)', () => {
  let dynamo: LocalDynamo;
  const put = (tableName: string, items: Array<Record<string, unknown>>) =>
    dynamo.documents.send(new BatchWriteCommand({ RequestItems: { [tableName]: items.map((Item) => ({ PutRequest: { Item } })) } }));
  // dynalite answers CreateTable before the table takes writes: wait for ACTIVE, as a client must.
  const createTable = async (input: ConstructorParameters<typeof CreateTableCommand>[0] & { TableName: string }) => {
    await dynamo.client.send(new CreateTableCommand(input));
    await waitUntilTableExists({ client: dynamo.client, maxWaitTime: 30, minDelay: 1 }, { TableName: input.TableName });
  };
  const legacyTable = async (tableName: string) => {
    await createTable(legacyTableInput(tableName));
    await put(tableName, legacyItems());
  };
  const indexNames = async (tableName: string) =>
    ((await dynamo.client.send(new DescribeTableCommand({ TableName: tableName }))).Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName).sort();
  const tables = async () => (await dynamo.client.send(new ListTablesCommand({}))).TableNames ?? [];

  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: 'current' });
  });
  afterAll(async () => dynamo.close());

  it('re-makes the table with every index, keeps every item and indexes the old sessions by status and tag', async () => {
    // Arrange
    await legacyTable('legacy');
    // Act
    const first = await ensureTableSchema(dynamo.client, 'legacy');
    const second = await ensureTableSchema(dynamo.client, 'legacy');
    // Assert
    const store = new DynamoDbSessionStore(dynamo.documents, 'legacy');
    expect(first).toBe('migrated');
    expect(second).toBe('current');
    expect(await indexNames('legacy')).toEqual(GLOBAL_INDEXES.map((i) => i.name).sort());
    expect(await tables()).not.toContain(backupTableName('legacy'));
    expect((await store.query({ filter: { status: 'complete' }, limit: 10 })).sessions.map((s) => s.name)).toEqual(['old-complete', 'old-untagged']);
    expect((await store.query({ filter: { tags: { automation: 'nightly' } }, limit: 10 })).sessions.map((s) => s.name)).toEqual(['old-complete', 'old-running']);
    expect((await store.get('old-running'))?.status.session.status).toBe('running');
    const config = await dynamo.documents.send(new GetCommand({ TableName: 'legacy', Key: { pk: 'CONFIG#c', sk: 'CONFIG' } }));
    expect(config.Item).toMatchObject({ version: 1, doc: { name: 'c' } });
  });

  it('drops a backup that was interrupted before it was whole and migrates from the untouched table', async () => {
    // Arrange
    await legacyTable('partial');
    await createTable(backupTableInput('partial'));
    await put(backupTableName('partial'), legacyItems().slice(0, 1));
    // Act
    const state = await ensureTableSchema(dynamo.client, 'partial');
    // Assert
    const store = new DynamoDbSessionStore(dynamo.documents, 'partial');
    expect(state).toBe('migrated');
    expect((await store.list()).map((s) => s.name)).toEqual(['old-complete', 'old-running', 'old-untagged']);
    expect(await tables()).not.toContain(backupTableName('partial'));
  });

  it('restores a whole backup when a start stopped after dropping the old table', async () => {
    // Arrange: a whole backup (with its marker), and no table.
    await createTable(backupTableInput('resumed'));
    await put(backupTableName('resumed'), [...legacyItems(), { pk: '__SCHEMA_MIGRATION__', sk: 'BACKUP_COMPLETE' }]);
    // Act
    const state = await ensureTableSchema(dynamo.client, 'resumed');
    // Assert
    const store = new DynamoDbSessionStore(dynamo.documents, 'resumed');
    expect(state).toBe('migrated');
    expect((await store.query({ filter: { status: 'running' }, limit: 10 })).sessions.map((s) => s.name)).toEqual(['old-running']);
    const marker = await dynamo.documents.send(new GetCommand({ TableName: 'resumed', Key: { pk: '__SCHEMA_MIGRATION__', sk: 'BACKUP_COMPLETE' } }));
    expect(marker.Item).toBeUndefined();
    expect(await tables()).not.toContain(backupTableName('resumed'));
  });
});

describe('an embedded data directory from before the listing indexes', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfs-migrate-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is migrated when the server opens it, and stays migrated after a restart', async () => {
    // Arrange: a persisted dynalite with the legacy table, closed again.
    const path = join(dir, 'db');
    const before = await startLocalDynamo({ path, tableName: 'bootstrap' });
    await before.client.send(new CreateTableCommand(legacyTableInput('cfs')));
    await waitUntilTableExists({ client: before.client, maxWaitTime: 30, minDelay: 1 }, { TableName: 'cfs' });
    await before.documents.send(new BatchWriteCommand({ RequestItems: { cfs: legacyItems().map((Item) => ({ PutRequest: { Item } })) } }));
    await before.close();
    // Act
    const opened = await startLocalDynamo({ path, tableName: 'cfs' });
    const running = await new DynamoDbSessionStore(opened.documents, 'cfs').query({ filter: { status: 'running' }, limit: 10 });
    await opened.close();
    const reopened = await startLocalDynamo({ path, tableName: 'cfs' });
    const state = await ensureTableSchema(reopened.client, 'cfs');
    const names = (await new DynamoDbSessionStore(reopened.documents, 'cfs').list()).map((s) => s.name);
    await reopened.close();
    // Assert
    expect(running.sessions.map((s) => s.name)).toEqual(['old-running']);
    expect(state).toBe('current');
    expect(names).toEqual(['old-complete', 'old-running', 'old-untagged']);
  });
});
