import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError, TransientError } from '../../core/errors.ts';
import { RecordCache, type VersionedRecord } from './record-cache.ts';
import { fromStoredDoc, toStoredDoc } from './stored-keys.ts';
import { listKey, listPartition, recordKey, TABLE_SCHEMA, type RecordKind } from './table-schema.ts';

const MAX_UPDATE_ATTEMPTS = 10;

const TRANSIENT_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
]);

/** Maps throttling and service faults to TransientError (retried by callers and the state machine). */
export function translate(error: unknown): never {
  const name = (error as { name?: string }).name ?? '';
  if (TRANSIENT_ERRORS.has(name) || /ECONNREFUSED|ECONNRESET|socket hang up/.test(String(error))) {
    throw new TransientError(`the table is unavailable: ${name || String(error)}`);
  }
  throw error;
}

/** How a store uses its table. */
export interface RecordTableOptions {
  /**
   * No other process writes this table (the embedded server's own database): records this
   * process wrote or read are served from memory (RecordCache) instead of read again.
   */
  soleWriter?: boolean;
}

/**
 * Every record's `doc` in one list partition of GSI1, in sort-key order, following every page.
 * Unbounded by design: for kinds that stay small or for callers that need them all.
 */
export async function listAll<T>(client: DynamoDBDocumentClient, tableName: string, partition: string): Promise<T[]> {
  const records: T[] = [];
  let startKey: Record<string, unknown> | undefined;
  try {
    do {
      const out = await client.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: TABLE_SCHEMA.listIndex.name,
          KeyConditionExpression: '#p = :p',
          ExpressionAttributeNames: { '#p': TABLE_SCHEMA.listIndex.partitionKey },
          ExpressionAttributeValues: { ':p': partition },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) records.push(fromStoredDoc<T>(item.doc));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
  } catch (error) {
    translate(error);
  }
  return records;
}

/**
 * Generic versioned record storage on the single table: the shared mechanics (conditional
 * create, optimistic-lock update, ordered listing) behind every DynamoDB store adapter.
 */
export class RecordTable<T> {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly kind: RecordKind,
    private readonly idOf: (record: T) => string,
    private readonly kindLabel: string,
    /** Further index attributes of a record's item (sessions: status and start time), rewritten on every put. */
    private readonly indexAttributes?: (record: T) => Record<string, unknown>,
    options: RecordTableOptions = {},
  ) {
    this.cache = options.soleWriter ? new RecordCache<T>() : undefined;
  }

  private readonly cache: RecordCache<T> | undefined;

  /** The version of each record object this table read or wrote, so an update of one just read skips reading it again. */
  private readonly versions = new WeakMap<object, number>();

  private item(record: T, version: number) {
    const id = this.idOf(record);
    return { ...recordKey(this.kind, id), ...listKey(this.kind, id), ...this.indexAttributes?.(record), version, doc: toStoredDoc(record) };
  }

  async create(record: T): Promise<void> {
    const id = this.idOf(record);
    const tick = this.cache?.writeBegins(id) ?? 0;
    let stored: VersionedRecord<T> | undefined;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: this.item(record, 1),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      this.versions.set(record as object, 1);
      stored = { doc: record, version: 1 };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException || (error as Error).name === 'ConditionalCheckFailedException') {
        throw new ConflictError(`${this.kindLabel} '${id}' already exists`);
      }
      translate(error);
    } finally {
      this.cache?.writeEnded(id, tick, stored);
    }
  }

  /** Creates or replaces, bumping the version. */
  async put(record: T): Promise<void> {
    const id = this.idOf(record);
    const current = await this.getVersioned(id);
    // Not cached: two unconditional puts may land in either order.
    const tick = this.cache?.writeBegins(id) ?? 0;
    try {
      await this.client.send(new PutCommand({ TableName: this.tableName, Item: this.item(record, (current?.version ?? 0) + 1) }));
    } catch (error) {
      translate(error);
    } finally {
      this.cache?.writeEnded(id, tick);
    }
  }

  async get(id: string): Promise<T | undefined> {
    return (await this.getVersioned(id))?.doc;
  }

  private async getVersioned(id: string): Promise<VersionedRecord<T> | undefined> {
    const cached = this.cache?.get(id);
    if (cached === null) return undefined;
    if (cached) {
      this.versions.set(cached.doc as object, cached.version);
      return cached;
    }
    const tick = this.cache?.readBegins() ?? 0;
    try {
      const out = await this.client.send(
        new GetCommand({ TableName: this.tableName, Key: recordKey(this.kind, id), ConsistentRead: true }),
      );
      const read = out.Item ? { doc: fromStoredDoc<T>(out.Item.doc), version: out.Item.version as number } : undefined;
      this.cache?.readEnded(id, read, tick);
      if (read) this.versions.set(read.doc as object, read.version);
      return read;
    } catch (error) {
      translate(error);
    }
  }

  async list(): Promise<T[]> {
    return listAll<T>(this.client, this.tableName, listPartition(this.kind));
  }

  /**
   * One page of this kind in id order: at most `limit` records after `after` (any string; the
   * record need not exist), and the id to continue after when more follow. Reads `limit + 1`
   * items, never the whole kind.
   */
  async page(limit: number, after?: string): Promise<{ records: T[]; next?: string }> {
    const records: T[] = [];
    let startKey: Record<string, unknown> | undefined;
    const { name, partitionKey, sortKey } = TABLE_SCHEMA.listIndex;
    try {
      do {
        const out = await this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: name,
            KeyConditionExpression: after === undefined ? '#p = :p' : '#p = :p AND #s > :after',
            ExpressionAttributeNames: { '#p': partitionKey, ...(after === undefined ? {} : { '#s': sortKey }) },
            ExpressionAttributeValues: { ':p': listPartition(this.kind), ...(after === undefined ? {} : { ':after': after }) },
            Limit: limit + 1 - records.length,
            ExclusiveStartKey: startKey,
          }),
        );
        for (const item of out.Items ?? []) records.push(fromStoredDoc<T>(item.doc));
        startKey = out.LastEvaluatedKey;
      } while (startKey && records.length <= limit);
    } catch (error) {
      translate(error);
    }
    if (records.length <= limit) return { records };
    const shown = records.slice(0, limit);
    return { records: shown, next: this.idOf(shown[shown.length - 1]!) };
  }

  /**
   * Read-modify-write on the record's version. `known`, a record this table just returned, is
   * tried as the current one without reading it again; if it is stale the write's condition
   * fails and the loop reads the record afresh.
   */
  async update(id: string, change: (current: T) => T, known?: T): Promise<T> {
    const knownVersion = known !== undefined && this.idOf(known) === id ? this.versions.get(known as object) : undefined;
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const current = attempt === 0 && knownVersion !== undefined ? { doc: known!, version: knownVersion } : await this.getVersioned(id);
      if (!current) throw new NotFoundError(this.kindLabel, id);
      const next = change(current.doc);
      const tick = this.cache?.writeBegins(id) ?? 0;
      let stored: VersionedRecord<T> | undefined;
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: this.item(next, current.version + 1),
            ConditionExpression: 'version = :v',
            ExpressionAttributeValues: { ':v': current.version },
          }),
        );
        this.versions.set(next as object, current.version + 1);
        stored = { doc: next, version: current.version + 1 };
        return next;
      } catch (error) {
        if ((error as Error).name !== 'ConditionalCheckFailedException') translate(error);
      } finally {
        this.cache?.writeEnded(id, tick, stored);
      }
    }
    throw new TransientError(`${this.kindLabel} '${id}' changed concurrently ${MAX_UPDATE_ATTEMPTS} times; try again`);
  }

  async delete(id: string): Promise<boolean> {
    const tick = this.cache?.writeBegins(id) ?? 0;
    let deleted = false;
    try {
      const out = await this.client.send(
        new DeleteCommand({ TableName: this.tableName, Key: recordKey(this.kind, id), ReturnValues: 'ALL_OLD' }),
      );
      deleted = out.Attributes !== undefined;
      this.cache?.writeEnded(id, tick, null);
    } catch (error) {
      this.cache?.writeEnded(id, tick);
      translate(error);
    }
    return deleted;
  }
}
