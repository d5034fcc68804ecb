import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  waitUntilTableExists,
  waitUntilTableNotExists,
  type DynamoDBClient,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { SessionRecord } from '../../core/model/session.ts';
import { sessionIndexAttributes, sessionTagItems } from './session-index.ts';
import { createTableInput, GLOBAL_INDEXES, TABLE_SCHEMA } from './table-schema.ts';

/**
 * Creates the table on first start, and brings a table made by an older version up to the
 * schema in table-schema.ts. On one machine (dynalite, which cannot add an index to a table):
 * every item is copied to a backup table, the table is made again with every index, and the
 * items are copied back with their index attributes and tag items written as today's code
 * writes them. The backup gets a marker item once it is whole, so a start interrupted at any
 * point resumes: a whole backup is restored, a partial one is dropped (the table is untouched
 * until the backup is whole). AWS tables are declared by the CDK stack instead.
 */

const MARKER = { pk: '__SCHEMA_MIGRATION__', sk: 'BACKUP_COMPLETE' };
const BATCH_WRITE_MAX = 25;

export type TableState = 'created' | 'current' | 'migrated';

/** The backup table's name next to `tableName`. */
export function backupTableName(tableName: string): string {
  return `${tableName}.schema-backup`;
}

async function describe(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

/** Whether the table has every index of today's schema, with the same keys. */
export function hasCurrentIndexes(table: TableDescription): boolean {
  return GLOBAL_INDEXES.every((wanted) => {
    const found = table.GlobalSecondaryIndexes?.find((index) => index.IndexName === wanted.name);
    const keys = Object.fromEntries((found?.KeySchema ?? []).map((k) => [k.KeyType, k.AttributeName]));
    return keys.HASH === wanted.partitionKey && keys.RANGE === wanted.sortKey && found?.Projection?.ProjectionType === wanted.projection;
  });
}

async function create(client: DynamoDBClient, input: ReturnType<typeof createTableInput> | Record<string, unknown>, tableName: string) {
  await client.send(new CreateTableCommand(input as never));
  await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1 }, { TableName: tableName });
}

async function drop(client: DynamoDBClient, tableName: string) {
  await client.send(new DeleteTableCommand({ TableName: tableName }));
  await waitUntilTableNotExists({ client, maxWaitTime: 60, minDelay: 1 }, { TableName: tableName });
}

async function* scanAll(documents: DynamoDBDocumentClient, tableName: string): AsyncGenerator<Array<Record<string, unknown>>> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await documents.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: startKey }));
    yield out.Items ?? [];
    startKey = out.LastEvaluatedKey;
  } while (startKey);
}

async function writeAll(documents: DynamoDBDocumentClient, tableName: string, items: Array<Record<string, unknown>>) {
  for (let i = 0; i < items.length; i += BATCH_WRITE_MAX) {
    let pending: Array<Record<string, unknown>> | undefined = items.slice(i, i + BATCH_WRITE_MAX).map((Item) => ({ PutRequest: { Item } }));
    while (pending?.length) {
      const out: { UnprocessedItems?: Record<string, unknown> } = await documents.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending as never } }));
      pending = out.UnprocessedItems?.[tableName] as Array<Record<string, unknown>> | undefined;
    }
  }
}

/** An item as today's code writes it: a session with its index attributes and its tag items. */
export function reindexItem(item: Record<string, unknown>): Array<Record<string, unknown>> {
  if (item.sk !== 'SESSION' || typeof item.doc !== 'object' || item.doc === null) return [item];
  const session = item.doc as SessionRecord;
  return [{ ...item, ...sessionIndexAttributes(session) }, ...sessionTagItems(session)];
}

/**
 * Makes sure `tableName` exists with today's schema (see the module comment). Returns what it
 * did: `created` (a new table), `current` (nothing to do) or `migrated` (re-made with every index).
 */
export async function ensureTableSchema(client: DynamoDBClient, tableName: string): Promise<TableState> {
  const documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const backupName = backupTableName(tableName);
  let table = await describe(client, tableName);

  if (await describe(client, backupName)) {
    let whole = false;
    for await (const page of scanAll(documents, backupName)) whole ||= page.some((i) => i.pk === MARKER.pk && i.sk === MARKER.sk);
    if (whole) {
      await restore(client, documents, tableName, backupName, table);
      return 'migrated';
    }
    // A partial backup: the copy was interrupted before the table was touched.
    await drop(client, backupName);
  }

  if (!table) {
    await create(client, createTableInput(tableName), tableName);
    return 'created';
  }
  if (hasCurrentIndexes(table)) return 'current';

  const { partitionKey, sortKey } = TABLE_SCHEMA;
  await create(
    client,
    {
      TableName: backupName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: partitionKey, AttributeType: 'S' },
        { AttributeName: sortKey, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: partitionKey, KeyType: 'HASH' },
        { AttributeName: sortKey, KeyType: 'RANGE' },
      ],
    },
    backupName,
  );
  for await (const page of scanAll(documents, tableName)) await writeAll(documents, backupName, page);
  await writeAll(documents, backupName, [MARKER]);
  table = await describe(client, tableName);
  await restore(client, documents, tableName, backupName, table);
  return 'migrated';
}

/** Re-makes the table with today's schema (unless it already has it) and copies the whole backup into it, re-indexed; then drops the backup. */
async function restore(
  client: DynamoDBClient,
  documents: DynamoDBDocumentClient,
  tableName: string,
  backupName: string,
  table: TableDescription | undefined,
): Promise<void> {
  if (table && !hasCurrentIndexes(table)) await drop(client, tableName);
  if (!table || !hasCurrentIndexes(table)) await create(client, createTableInput(tableName), tableName);
  for await (const page of scanAll(documents, backupName)) {
    const items = page.filter((i) => !(i.pk === MARKER.pk && i.sk === MARKER.sk)).flatMap(reindexItem);
    await writeAll(documents, tableName, items);
  }
  await drop(client, backupName);
}
