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
 * | artifact ref  | `ARTIFACT#<key>`   | `REF#<id>` | -             | -       |
 * | artifact claim| `ARTIFACT#<key>`   | `CLAIM`   | -              | -       |
 * | image wait    | `WAIT#<session>`   | `WAIT`    | `WAITS`        | session |
 * | automation    | `AUTOMATION#<name>`| `AUTOMATION` | `AUTOMATIONS` | name |
 * | source        | `SOURCE#<name>`    | `SOURCE`  | `SOURCES`      | name    |
 *
 * An image wait (AWS only) is a session parked in the WaitForImages state: `doc` holds its
 * Step Functions task token and the image IDs it waits for, so the workflow starter's `wake`
 * (and the Image Registered trigger) can end the wait; `expires_at` (TTL) removes leftovers.
 *
 * Access patterns served now: get by key; conditional create (`attribute_not_exists(pk)`, so a
 * duplicate is refused even when two creates race); list one kind ordered by name (Query on
 * GSI1). Retention: a session item gets the TTL attribute `expires_at` (epoch seconds) when the
 * session completes, `session_ttl` after completion (never before a debug hold ends), so
 * DynamoDB's TTL removes it in AWS (within a day or two of expiry, as TTL runs; TTL does not
 * reach the session's tag items or its `sessions/<name>/` objects in S3). dynalite has no TTL
 * process: the embedded retention sweep (adapters/local/retention-sweeper.ts) removes expired
 * sessions, their `sessions/<name>/` objects and orphaned workspaces, applying `session_ttl`
 * as it stands.
 *
 * Images (dynamodb-image-registry.ts): a visible image also has `gsi2pk` `IMAGE_NAMES` and
 * `gsi2sk` `<name> NUL <id>` (the name index: exact-name and prefix listings in name order).
 * An artifact ref says that image `<id>` references the store key `<key>` (written before the
 * image record, removed after it); a key's claim is written by a delete before it looks for
 * refs (one Query, Limit 1, in the key's own partition), and refuses new refs for a day (TTL).
 *
 * An automation's `doc` holds its spec, the inputs of its last build and its history (the
 * newest 50 runs and skips, identical consecutive skips folded into one), so one read shows it
 * all and each run costs one read-modify-write of one item (tens of KB at most).
 *
 * Result images by input fingerprint (`metadata.cfs_fingerprint`, automations): no index. An
 * evaluation (a schedule tick over any number of automations, an event, a plan) lists the
 * images once, a Query of the `IMAGES` partition of GSI1 that it needs anyway to pick each
 * automation's newest matching source, and looks fingerprints up in memory. Cost: one paged
 * Query per evaluation, about (number of images x ~1 KB) / 4 KB read units, never one per
 * automation. An index by fingerprint would not save that listing (source selection needs it)
 * and would have to be kept right on every image write and delete.
 *
 * Session listing (issue 3; the key builders are in session-index.ts):
 *
 * | item            | pk               | sk          | gsi1pk / gsi1sk                | gsi2pk / gsi2sk                  | gsi3sk             |
 * | --------------- | ---------------- | ----------- | ------------------------------ | -------------------------------- | ------------------ |
 * | session         | `SESSION#<name>` | `SESSION`   | `SESSIONS` / name              | `SESSION_STATUS#<status>` / name | `<start>#<name>`   |
 * | session tag     | `SESSION#<name>` | `TAG#<h>`   | `SESSION_TAG#<h>` / name       | -                                | -                  |
 * | options         | `OPTIONS#cfs`    | `OPTIONS`   | `OPTIONS` / cfs                | -                                | -                  |
 *
 * `<h>` is the sha256 of the tag's key and value. A tag item is written with its session and
 * holds `started` and `doc: {name, tags}`: what never changes on a session, so a tag item can
 * never disagree with its session's status. Index-backed (the Query reads only the key range):
 * `status` (GSI2, name order), `tags` (the first tag's GSI1 partition, name order), `after_id`
 * (every listing sorts by name, so paging is `sort key > after_id` on any of them) and, for
 * bulk deletes and retention (no order needed), `status` with `min_age`/`max_age` (GSI3, a key
 * range on start time within the status partition; KEYS_ONLY). Applied on top of the chosen
 * key range as a FilterExpression, then re-checked on the whole record: `succeeded`,
 * `min_age`/`max_age` when listing (the listing order is by name, so age cannot be the sort
 * key), further tags, and `name_contains`, which no key can serve (a substring match). Their
 * cost is bounded per page: one page request examines at most `listingReadBudget(limit)` items
 * (10 x limit, at least 1,000); when the budget runs out first, the page is returned short with
 * `next.after_id` at the last name examined, so each request costs at most the budget and a
 * client that follows `next` reaches every match.
 */
export const TABLE_SCHEMA = {
  partitionKey: 'pk',
  sortKey: 'sk',
  listIndex: { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
  /** Sessions by status, in name order (a listing filtered by status). */
  statusIndex: { name: 'gsi2', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  /** Sessions by status, in start-time order (bulk deletes and retention by age); keys only. */
  statusAgeIndex: { name: 'gsi3', partitionKey: 'gsi2pk', sortKey: 'gsi3sk' },
  ttlAttribute: 'expires_at',
} as const;

/** Every global secondary index of the table: CreateTable, the CDK table and the local migration declare exactly these. */
export const GLOBAL_INDEXES = [
  { ...TABLE_SCHEMA.listIndex, projection: 'ALL' },
  { ...TABLE_SCHEMA.statusIndex, projection: 'ALL' },
  { ...TABLE_SCHEMA.statusAgeIndex, projection: 'KEYS_ONLY' },
] as const;

export const DEFAULT_TABLE_NAME = 'cfs';

export type RecordKind = 'SESSION' | 'CONFIG' | 'IMAGE' | 'WAIT' | 'OPTIONS' | 'AUTOMATION' | 'SOURCE';

const LIST_PARTITION: Record<RecordKind, string> = {
  SESSION: 'SESSIONS',
  CONFIG: 'CONFIGS',
  IMAGE: 'IMAGES',
  WAIT: 'WAITS',
  OPTIONS: 'OPTIONS',
  AUTOMATION: 'AUTOMATIONS',
  SOURCE: 'SOURCES',
};

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

/** The CreateTable input for the embedded server; CDK declares the same schema from TABLE_SCHEMA and GLOBAL_INDEXES. */
export function createTableInput(tableName: string) {
  const { partitionKey, sortKey } = TABLE_SCHEMA;
  const keyAttributes = [partitionKey, sortKey, ...GLOBAL_INDEXES.flatMap((index) => [index.partitionKey, index.sortKey])];
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: [...new Set(keyAttributes)].map((name) => ({ AttributeName: name, AttributeType: 'S' as const })),
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' as const },
      { AttributeName: sortKey, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: GLOBAL_INDEXES.map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
        { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
      ],
      Projection: { ProjectionType: index.projection },
    })),
  };
}
