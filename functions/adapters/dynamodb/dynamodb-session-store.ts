import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand, BatchWriteCommand, QueryCommand, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import { ConflictError } from '../../core/errors.ts';
import type { SessionRecord } from '../../core/model/session.ts';
import { sessionMatches } from '../../core/sessions/filters.ts';
import type { SessionFilter, SessionPage, SessionPageRequest, SessionStore } from '../../ports/session-store.ts';
import { RecordTable, type RecordTableOptions, translate } from './record-table.ts';
import { sessionIndexAttributes, sessionTagItems, startedKey, statusPartition, TAG_SORT_PREFIX, tagPartition } from './session-index.ts';
import { fromStoredDoc, storedKey } from './stored-keys.ts';
import { recordKey, TABLE_SCHEMA } from './table-schema.ts';

/** How many items one page request may examine: 10 x the page size, at least 1,000 (see table-schema.ts). */
export function listingReadBudget(limit: number): number {
  return Math.max(1000, 10 * limit);
}

/** With a FilterExpression, read at least this many items per call, so sparse matches do not cost a round trip each. */
const MIN_FILTERED_CHUNK = 100;
const BATCH_GET_MAX = 100;
const BATCH_WRITE_MAX = 25;

/** One key range to read: which index and partition, and whether its items hold no whole record (tag items, keys-only items). */
interface Plan {
  index: string;
  partitionKey: string;
  sortKey: string;
  partition: string;
  fetchRecords: boolean;
}

/** A FilterExpression with its names and values. */
interface Expression {
  text?: string;
  names: Record<string, string>;
  values: Record<string, unknown>;
}

/**
 * Sessions on the single table (AWS DynamoDB or dynalite). Besides the session item (whose
 * status and start-time index attributes are rewritten with every put) each tag of a session
 * has an immutable tag item, so listings by status or by tag read one key range in name order
 * (table-schema.ts says which filters each index serves and how the rest are bounded).
 */
export class DynamoDbSessionStore implements SessionStore {
  private readonly table: RecordTable<SessionRecord>;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: RecordTableOptions = {},
  ) {
    // Index attributes and the TTL attribute (set on completion) are rewritten with every put.
    this.table = new RecordTable<SessionRecord>(client, tableName, 'SESSION', (s) => s.name, 'session', sessionIndexAttributes, options);
  }

  /**
   * Tag items go first: a session item never exists without them. If the name is taken, the
   * tag items this attempt wrote for tags the existing session lacks are removed again.
   */
  async create(session: SessionRecord): Promise<void> {
    const tagItems = sessionTagItems(session);
    await this.writeItems(tagItems);
    try {
      await this.table.create(session);
    } catch (error) {
      if (error instanceof ConflictError && tagItems.length) {
        const existing = await this.table.get(session.name);
        const keep = new Set(existing ? sessionTagItems(existing).map((i) => i.sk) : []);
        await this.deleteKeys(tagItems.filter((i) => !keep.has(i.sk)).map(({ pk, sk }) => ({ pk, sk })));
      }
      throw error;
    }
  }

  get(name: string) {
    return this.table.get(name);
  }

  list() {
    return this.table.list();
  }

  /** Tags rarely change (CFS never changes them) and the TTL is set once, on completion; when either changes, the tag items follow. */
  async update(name: string, change: (current: SessionRecord) => SessionRecord, known?: SessionRecord): Promise<SessionRecord> {
    let before: SessionRecord | undefined;
    const after = await this.table.update(
      name,
      (current) => {
        before = current;
        return change(current);
      },
      known,
    );
    if (before && (JSON.stringify(before.tags) !== JSON.stringify(after.tags) || before.expires_at !== after.expires_at)) {
      const current = sessionTagItems(after);
      const kept = new Set(current.map((item) => item.sk));
      const stale = sessionTagItems(before).filter((item) => !kept.has(item.sk));
      await this.writeItems(current);
      await this.deleteKeys(stale.map(({ pk, sk }) => ({ pk, sk })));
    }
    return after;
  }

  /** The session item first, then its tag items (a leftover tag item only costs a read; it never lists a session). */
  async delete(name: string): Promise<boolean> {
    const deleted = await this.table.delete(name);
    const tagKeys: Array<{ pk: string; sk: string }> = [];
    let startKey: Record<string, unknown> | undefined;
    try {
      do {
        const out = await this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :tag)',
            ExpressionAttributeNames: { '#pk': TABLE_SCHEMA.partitionKey, '#sk': TABLE_SCHEMA.sortKey },
            ExpressionAttributeValues: { ':pk': recordKey('SESSION', name).pk, ':tag': TAG_SORT_PREFIX },
            ProjectionExpression: '#pk, #sk',
            ExclusiveStartKey: startKey,
          }),
        );
        for (const item of out.Items ?? []) tagKeys.push({ pk: item.pk as string, sk: item.sk as string });
        startKey = out.LastEvaluatedKey;
      } while (startKey);
    } catch (error) {
      translate(error);
    }
    await this.deleteKeys(tagKeys);
    return deleted;
  }

  /**
   * One page in name order from the key range that serves the filter best (a tag's, a
   * status's, or all sessions'), the rest of the filter applied by DynamoDB on the items read
   * and re-checked on the whole records. Reads `limit + 1` items when the key range alone
   * decides, and never more than the read budget.
   */
  async query(request: SessionPageRequest): Promise<SessionPage> {
    const { filter, limit, after } = request;
    const plan = listingPlan(filter);
    const expression = filterExpression(filter, plan);
    const budget = listingReadBudget(limit);
    const found: SessionRecord[] = [];
    let examined = 0;
    let startKey: Record<string, unknown> | undefined;
    for (;;) {
      const want = limit + 1 - found.length;
      const chunk = expression.text ? Math.max(want, MIN_FILTERED_CHUNK) : want;
      const out = await this.read(plan, expression, { after, startKey, limit: Math.min(chunk, budget - examined) });
      examined += out.ScannedCount ?? 0;
      for (const session of await this.records(plan, out.Items ?? [])) if (sessionMatches(session, filter)) found.push(session);
      if (found.length > limit) return { sessions: found.slice(0, limit), next: found[limit - 1]!.name };
      startKey = out.LastEvaluatedKey;
      if (!startKey) return { sessions: found };
      if (examined >= budget) return { sessions: found, next: startKey[plan.sortKey] as string };
    }
  }

  /**
   * Every matching name, for bulk deletes and retention: a status with an age is a key range
   * on start time (GSI3) that reads only the sessions in that age range; otherwise the same
   * key ranges as a listing, read to the end.
   */
  async matchingNames(filter: SessionFilter): Promise<string[]> {
    const byAge = filter.status !== undefined && (filter.startedBefore !== undefined || filter.startedAfter !== undefined);
    if (byAge && filter.startedBefore !== undefined && filter.startedAfter !== undefined && startedKey(filter.startedAfter) >= startedKey(filter.startedBefore)) return [];
    const plan: Plan = byAge
      ? { index: TABLE_SCHEMA.statusAgeIndex.name, partitionKey: TABLE_SCHEMA.statusAgeIndex.partitionKey, sortKey: TABLE_SCHEMA.statusAgeIndex.sortKey, partition: statusPartition(filter.status!), fetchRecords: true }
      : listingPlan(filter);
    const expression: Expression = byAge ? { names: {}, values: {} } : filterExpression(filter, plan);
    const names: string[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.read(plan, expression, { startKey, ageRange: byAge ? filter : undefined });
      for (const session of await this.records(plan, out.Items ?? [])) if (sessionMatches(session, filter)) names.push(session.name);
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return names;
  }

  private async read(
    plan: Plan,
    expression: Expression,
    options: { after?: string; startKey?: Record<string, unknown>; limit?: number; ageRange?: SessionFilter },
  ) {
    const names: Record<string, string> = { '#p': plan.partitionKey, ...expression.names };
    const values: Record<string, unknown> = { ':p': plan.partition, ...expression.values };
    let condition = '#p = :p';
    if (options.after !== undefined) {
      names['#s'] = plan.sortKey;
      values[':after'] = options.after;
      condition += ' AND #s > :after';
    } else if (options.ageRange) {
      // `<start>#<name>` keys: `< before` holds exactly the starts before it; `> after#\uffff` exactly the starts after it.
      names['#s'] = plan.sortKey;
      const { startedBefore, startedAfter } = options.ageRange;
      if (startedAfter !== undefined) values[':from'] = `${startedKey(startedAfter)}#\uffff`;
      if (startedBefore !== undefined) values[':to'] = startedKey(startedBefore);
      condition +=
        startedAfter !== undefined && startedBefore !== undefined ? ' AND #s BETWEEN :from AND :to' : startedAfter !== undefined ? ' AND #s > :from' : ' AND #s < :to';
    }
    try {
      return await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: plan.index,
          KeyConditionExpression: condition,
          ...(expression.text ? { FilterExpression: expression.text } : {}),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ...(options.limit !== undefined ? { Limit: Math.max(1, options.limit) } : {}),
          ExclusiveStartKey: options.startKey,
        }),
      );
    } catch (error) {
      translate(error);
    }
  }

  /** The whole records behind the items read: in the items themselves, or fetched (tag and keys-only items), in item order. */
  private async records(plan: Plan, items: Array<Record<string, unknown>>): Promise<SessionRecord[]> {
    if (!plan.fetchRecords) return items.map((item) => fromStoredDoc<SessionRecord>(item.doc));
    const names = items.map((item) => (item.pk as string).slice(recordKey('SESSION', '').pk.length));
    const byName = new Map<string, SessionRecord>();
    for (let i = 0; i < names.length; i += BATCH_GET_MAX) {
      let keys: Array<Record<string, unknown>> | undefined = names.slice(i, i + BATCH_GET_MAX).map((name) => recordKey('SESSION', name));
      try {
        while (keys?.length) {
          const out: BatchGetCommandOutput = await this.client.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
          for (const item of out.Responses?.[this.tableName] ?? []) byName.set((item.doc as SessionRecord).name, fromStoredDoc<SessionRecord>(item.doc));
          keys = out.UnprocessedKeys?.[this.tableName]?.Keys;
        }
      } catch (error) {
        translate(error);
      }
    }
    return names.flatMap((name) => byName.get(name) ?? []);
  }

  private async writeItems(items: Array<Record<string, unknown>>): Promise<void> {
    await this.batchWrite(items.map((Item) => ({ PutRequest: { Item } })));
  }

  private async deleteKeys(keys: Array<{ pk: string; sk: string }>): Promise<void> {
    await this.batchWrite(keys.map((Key) => ({ DeleteRequest: { Key } })));
  }

  private async batchWrite(requests: Array<Record<string, unknown>>): Promise<void> {
    try {
      for (let i = 0; i < requests.length; i += BATCH_WRITE_MAX) {
        let pending: Array<Record<string, unknown>> | undefined = requests.slice(i, i + BATCH_WRITE_MAX);
        while (pending?.length) {
          const out: { UnprocessedItems?: Record<string, unknown> } = await this.client.send(new BatchWriteCommand({ RequestItems: { [this.tableName]: pending as never } }));
          pending = out.UnprocessedItems?.[this.tableName] as Array<Record<string, unknown>> | undefined;
        }
      }
    } catch (error) {
      translate(error);
    }
  }
}

/** The key range of a listing: the first tag's partition, else the status's, else every session (all in name order). */
function listingPlan(filter: SessionFilter): Plan {
  const firstTag = Object.entries(filter.tags ?? {})[0];
  if (firstTag) {
    const { name, partitionKey, sortKey } = TABLE_SCHEMA.listIndex;
    return { index: name, partitionKey, sortKey, partition: tagPartition(firstTag[0], firstTag[1]), fetchRecords: true };
  }
  if (filter.status !== undefined) {
    const { name, partitionKey, sortKey } = TABLE_SCHEMA.statusIndex;
    return { index: name, partitionKey, sortKey, partition: statusPartition(filter.status), fetchRecords: false };
  }
  const { name, partitionKey, sortKey } = TABLE_SCHEMA.listIndex;
  return { index: name, partitionKey, sortKey, partition: 'SESSIONS', fetchRecords: false };
}

/**
 * The FilterExpression for what the key range does not decide. Tag items carry only what never
 * changes (name, tags, start time); status and outcome are checked on the fetched records.
 */
function filterExpression(filter: SessionFilter, plan: Plan): Expression {
  const parts: string[] = [];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const doc = (...path: string[]) => ['#doc', ...path.map((p) => `#${p}`)].join('.');
  const name = (...path: string[]) => {
    names['#doc'] = 'doc';
    for (const p of path) names[`#${p}`] = p;
  };
  if (!plan.fetchRecords) {
    if (filter.status !== undefined && plan.index !== TABLE_SCHEMA.statusIndex.name) {
      name('status', 'session');
      parts.push(`${doc('status', 'session', 'status')} = :status`);
      values[':status'] = filter.status;
    }
    if (filter.succeeded !== undefined) {
      name('status', 'session', 'succeeded');
      parts.push(`${doc('status', 'session', 'succeeded')} = :succeeded`);
      values[':succeeded'] = filter.succeeded;
    }
  }
  if (filter.nameContains !== undefined) {
    name('name');
    parts.push(`contains(${doc('name')}, :nameContains)`);
    values[':nameContains'] = filter.nameContains;
  }
  if (filter.startedBefore !== undefined) {
    names['#started'] = 'started';
    parts.push('#started < :startedBefore');
    values[':startedBefore'] = startedKey(filter.startedBefore);
  }
  if (filter.startedAfter !== undefined) {
    names['#started'] = 'started';
    parts.push('#started > :startedAfter');
    values[':startedAfter'] = startedKey(filter.startedAfter);
  }
  Object.entries(filter.tags ?? {}).forEach(([key, value], i) => {
    names['#doc'] = 'doc';
    names['#tags'] = 'tags';
    names[`#tag${i}`] = storedKey(key);
    parts.push(`#doc.#tags.#tag${i} = :tag${i}`);
    values[`:tag${i}`] = value;
  });
  return { text: parts.length ? parts.join(' AND ') : undefined, names, values };
}
