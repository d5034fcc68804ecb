/**
 * The single-table key schema. One module, used by the DynamoDB adapters (against AWS or
 * dynalite), the embedded server (which creates the table on first start) and the CDK stack
 * (which declares it), so the three can never disagree.
 *
 * Items: `{pk, sk, gsi1pk, gsi1sk, version, doc}`; `doc` is the record itself.
 *
 * | record        | pk                 | sk        | gsi1pk         | gsi1sk  |
 * | ------------- | ------------------ | --------- | -------------- | ------- |
 * | session       | `SESSION#<name>`   | `SESSION` | `SESSIONS`     | name    |
 * | configuration | `CONFIG#<name>`    | `CONFIG`  | `CONFIGS`      | name    |
 * | image         | `IMAGE#<id>`       | `IMAGE`   | `IMAGES`       | id      |
 *
 * Access patterns served now: get by key; conditional create (`attribute_not_exists(pk)`, so a
 * duplicate is refused even when two creates race); list one kind ordered by name (Query on
 * GSI1). Planned: sessions by status and age (GSI2 `SESSION_STATUS#<status>` / start time),
 * sessions waiting for an image (`WAIT#<image id>` items), sessions by tag, result images by
 * input fingerprint, and the TTL attribute `expires_at` for retention.
 */
export const TABLE_SCHEMA = {
  partitionKey: 'pk',
  sortKey: 'sk',
  listIndex: { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
  ttlAttribute: 'expires_at',
} as const;

export const DEFAULT_TABLE_NAME = 'cfs';

export type RecordKind = 'SESSION' | 'CONFIG' | 'IMAGE';

const LIST_PARTITION: Record<RecordKind, string> = { SESSION: 'SESSIONS', CONFIG: 'CONFIGS', IMAGE: 'IMAGES' };

/** The primary key of a record of `kind` called `id`. */
export function recordKey(kind: RecordKind, id: string): { pk: string; sk: string } {
  return { pk: `${kind}#${id}`, sk: kind };
}

/** The GSI1 attributes that list a record of `kind` in id order. */
export function listKey(kind: RecordKind, id: string): { gsi1pk: string; gsi1sk: string } {
  return { gsi1pk: LIST_PARTITION[kind], gsi1sk: id };
}

export function listPartition(kind: RecordKind): string {
  return LIST_PARTITION[kind];
}

/** The CreateTable input for the embedded server; CDK declares the same schema from TABLE_SCHEMA. */
export function createTableInput(tableName: string) {
  const { partitionKey, sortKey, listIndex } = TABLE_SCHEMA;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: [
      { AttributeName: partitionKey, AttributeType: 'S' as const },
      { AttributeName: sortKey, AttributeType: 'S' as const },
      { AttributeName: listIndex.partitionKey, AttributeType: 'S' as const },
      { AttributeName: listIndex.sortKey, AttributeType: 'S' as const },
    ],
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' as const },
      { AttributeName: sortKey, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: listIndex.name,
        KeySchema: [
          { AttributeName: listIndex.partitionKey, KeyType: 'HASH' as const },
          { AttributeName: listIndex.sortKey, KeyType: 'RANGE' as const },
        ],
        Projection: { ProjectionType: 'ALL' as const },
      },
    ],
  };
}
