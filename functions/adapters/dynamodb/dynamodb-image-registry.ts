import { randomUUID } from 'node:crypto';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError, TransientError } from '../../core/errors.ts';
import type { ImageRecord } from '../../core/model/image.ts';
import {
  answersRecord,
  type ImageCursor,
  type ImagePage,
  type ImagePageQuery,
  type ImageReadOptions,
  type ImageRegistry,
} from '../../ports/image-registry.ts';
import { listAll, translate } from './record-table.ts';
import { fromStoredDoc, toStoredDoc } from './stored-keys.ts';
import { listKey, listPartition, recordKey, TABLE_SCHEMA } from './table-schema.ts';

/**
 * Item layout (table-schema.ts has the whole table):
 *
 * | item              | pk                | sk            | gsi1pk / gsi1sk | gsi2pk / gsi2sk              |
 * | ----------------- | ----------------- | ------------- | --------------- | ---------------------------- |
 * | image             | `IMAGE#<id>`      | `IMAGE`       | `IMAGES` / id   | `IMAGE_NAMES` / name NUL id  |
 * | artifact ref      | `ARTIFACT#<key>`  | `REF#<id>`    | -               | -                            |
 * | artifact claim    | `ARTIFACT#<key>`  | `CLAIM`       | -               | -                            |
 *
 * The name index entry (GSI2) is written only while the image is visible, so pending results are
 * never read by a name listing. A key's references share its partition, so "does any image still
 * reference this key" is one Query with Limit 1, whatever the number of images.
 *
 * Deleting a key and referencing it race safely with single-item writes only (dynalite has no
 * transactions): a deleter first writes the claim, then looks for a reference; a writer first
 * writes its reference, then looks for a claim. Whichever writes second sees the other's write:
 * the deleter keeps the object, or the writer is refused (ConflictError) and takes its
 * reference back. A claim that led to a delete stays for CLAIM_SECONDS (TTL in AWS), so a
 * registration that checked the bytes before they went is still refused.
 */

const NAME_PARTITION = 'IMAGE_NAMES';
/** Between name and id in the name index's sort key: sorts before any character a name can hold. */
const NAME_SEPARATOR = '\u0000';
const REF_PREFIX = 'REF#';
const CLAIM_SORT_KEY = 'CLAIM';
/** How long a claim refuses new references: longer than any registration's check of its bytes. */
const CLAIM_SECONDS = 24 * 3600;
/** How often, and how far apart, a writer looks again at a claim before it gives up. */
const CLAIM_RECHECKS = 5;
const CLAIM_RECHECK_MS = 40;
const INDEXED_MARKER = { pk: '__IMAGE_REFERENCES__', sk: 'INDEXED' };
const MAX_UPDATE_ATTEMPTS = 10;
/** Items one Query call reads while a page is being filled (a page of matches may need several calls). */
const CHUNK = 200;

function artifactPartition(key: string): string {
  return `ARTIFACT#${key}`;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function isConditionFailure(error: unknown): boolean {
  return (error as Error).name === 'ConditionalCheckFailedException';
}

/** The name index's sort key of an image. */
export function imageNameSortKey(name: string, id: string): string {
  return `${name}${NAME_SEPARATOR}${id}`;
}

/** An image's item as this registry writes it (at `version`): also for seeding tables in bulk. */
export function imageItem(image: ImageRecord, version: number): Record<string, unknown> {
  const { partitionKey, sortKey } = TABLE_SCHEMA.statusIndex;
  return {
    ...recordKey('IMAGE', image.id),
    ...listKey('IMAGE', image.id),
    ...(image.pending_session === undefined ? { [partitionKey]: NAME_PARTITION, [sortKey]: imageNameSortKey(image.name, image.id) } : {}),
    version,
    doc: toStoredDoc(image),
  };
}

/** IMS image records and their artifact reference index on the single table (AWS DynamoDB or dynalite); results pending their session are hidden from reads unless asked for. */
export class DynamoDbImageRegistry implements ImageRegistry {
  private indexed = false;

  /** Not cached (unlike other record kinds): each write is several items, and the delete rule's reads must be fresh. */
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private async send<T>(command: { input: unknown }): Promise<T> {
    try {
      return (await this.client.send(command as never)) as T;
    } catch (error) {
      if (isConditionFailure(error)) throw error;
      translate(error);
    }
  }

  private async read(id: string): Promise<{ doc: ImageRecord; version: number } | undefined> {
    const out = await this.send<{ Item?: Record<string, unknown> }>(
      new GetCommand({ TableName: this.tableName, Key: recordKey('IMAGE', id), ConsistentRead: true }),
    );
    return out.Item ? { doc: fromStoredDoc<ImageRecord>(out.Item.doc), version: out.Item.version as number } : undefined;
  }

  async create(image: ImageRecord): Promise<void> {
    await this.reference(image.id, image.artifact_keys ?? [], []);
    try {
      await this.send(new PutCommand({ TableName: this.tableName, Item: imageItem(image, 1), ConditionExpression: 'attribute_not_exists(pk)' }));
    } catch (error) {
      // The record that exists holds its own references (the same ones when a retry raced).
      if (isConditionFailure(error)) throw new ConflictError(`image '${image.id}' already exists`);
      throw error;
    }
  }

  async get(id: string, options?: ImageReadOptions) {
    const image = (await this.read(id))?.doc;
    return image && answersRecord(image, options) ? image : undefined;
  }

  async list(options?: ImageReadOptions) {
    return (await listAll<ImageRecord>(this.client, this.tableName, listPartition('IMAGE'))).filter((image) => answersRecord(image, options));
  }

  async update(id: string, change: (current: ImageRecord) => ImageRecord): Promise<ImageRecord> {
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const current = await this.read(id);
      if (!current) throw new NotFoundError('image', id);
      const next = change(current.doc);
      const before = current.doc.artifact_keys ?? [];
      await this.reference(id, next.artifact_keys ?? [], before);
      try {
        await this.send(
          new PutCommand({
            TableName: this.tableName,
            Item: imageItem(next, current.version + 1),
            ConditionExpression: 'version = :v',
            ExpressionAttributeValues: { ':v': current.version },
          }),
        );
      } catch (error) {
        if (isConditionFailure(error)) continue;
        throw error;
      }
      const dropped = before.filter((key) => !(next.artifact_keys ?? []).includes(key));
      await this.unreference(id, dropped);
      return next;
    }
    throw new TransientError(`image '${id}' changed concurrently ${MAX_UPDATE_ATTEMPTS} times; try again`);
  }

  async delete(id: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const current = await this.read(id);
      if (!current) return false;
      try {
        await this.send(
          new DeleteCommand({
            TableName: this.tableName,
            Key: recordKey('IMAGE', id),
            ConditionExpression: 'version = :v',
            ExpressionAttributeValues: { ':v': current.version },
          }),
        );
      } catch (error) {
        if (isConditionFailure(error)) continue;
        throw error;
      }
      await this.unreference(id, current.doc.artifact_keys ?? []);
      return true;
    }
    throw new TransientError(`image '${id}' changed concurrently ${MAX_UPDATE_ATTEMPTS} times; try again`);
  }

  /**
   * Writes `id`'s references to the keys in `keys` it does not hold yet (`held`), then refuses
   * (taking them back) when one of those keys is claimed for deletion.
   */
  private async reference(id: string, keys: string[], held: string[]): Promise<void> {
    const added = [...new Set(keys)].filter((key) => !held.includes(key));
    if (added.length === 0) return;
    await Promise.all(
      added.map((key) =>
        this.send(new PutCommand({ TableName: this.tableName, Item: { pk: artifactPartition(key), sk: `${REF_PREFIX}${id}`, image: id } })),
      ),
    );
    for (const key of added) {
      // A deleter that claimed the key before our reference was written looks for references
      // after its claim: it finds ours and takes the claim back within moments, unless it found
      // none (then the object is gone or going, and the claim stays).
      for (let check = 0; await this.claimed(key); check++) {
        if (check === CLAIM_RECHECKS) {
          await this.unreference(id, added);
          throw new ConflictError(`artifact ${key} was deleted with the last image that held it; upload it again`);
        }
        await new Promise((resolve) => setTimeout(resolve, CLAIM_RECHECK_MS));
      }
    }
  }

  private async claimed(key: string): Promise<boolean> {
    const claim = await this.send<{ Item?: { claimed_until?: number } }>(
      new GetCommand({ TableName: this.tableName, Key: { pk: artifactPartition(key), sk: CLAIM_SORT_KEY }, ConsistentRead: true }),
    );
    return (claim.Item?.claimed_until ?? 0) > nowSeconds();
  }

  private async unreference(id: string, keys: string[]): Promise<void> {
    await Promise.all(
      [...new Set(keys)].map((key) => this.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: artifactPartition(key), sk: `${REF_PREFIX}${id}` } }))),
    );
  }

  async claimUnreferenced(key: string): Promise<boolean> {
    const token = randomUUID();
    const until = nowSeconds() + CLAIM_SECONDS;
    const claimKey = { pk: artifactPartition(key), sk: CLAIM_SORT_KEY };
    await this.send(
      new PutCommand({ TableName: this.tableName, Item: { ...claimKey, claim: token, claimed_until: until, [TABLE_SCHEMA.ttlAttribute]: until } }),
    );
    const refs = await this.send<{ Items?: unknown[] }>(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :p AND begins_with(sk, :r)',
        ExpressionAttributeValues: { ':p': artifactPartition(key), ':r': REF_PREFIX },
        ConsistentRead: true,
        Limit: 1,
      }),
    );
    if ((refs.Items ?? []).length === 0) return true;
    try {
      await this.send(
        new DeleteCommand({ TableName: this.tableName, Key: claimKey, ConditionExpression: 'claim = :t', ExpressionAttributeValues: { ':t': token } }),
      );
    } catch (error) {
      // Another deleter claimed it since: that claim is theirs to settle.
      if (!isConditionFailure(error)) throw error;
    }
    return false;
  }

  async referencesIndexed(): Promise<boolean> {
    if (this.indexed) return true;
    const out = await this.send<{ Item?: unknown }>(new GetCommand({ TableName: this.tableName, Key: INDEXED_MARKER, ConsistentRead: true }));
    this.indexed = out.Item !== undefined;
    return this.indexed;
  }

  async markReferencesIndexed(): Promise<void> {
    await this.send(new PutCommand({ TableName: this.tableName, Item: { ...INDEXED_MARKER, at: new Date().toISOString() } }));
    this.indexed = true;
  }

  /**
   * Reads chunks of the chosen key range (the name index for `name`/`namePrefix`, the id list
   * otherwise) after the cursor until the page is full, the range ends, or `readBudget` items
   * were examined; `next` is the last item examined, so a short page continues where it stopped.
   */
  async page(query: ImagePageQuery): Promise<ImagePage> {
    const byName = query.name !== undefined || query.namePrefix !== undefined;
    const index = byName ? TABLE_SCHEMA.statusIndex : TABLE_SCHEMA.listIndex;
    const prefix = query.name !== undefined ? `${query.name}${NAME_SEPARATOR}` : (query.namePrefix ?? '');
    const after = query.after ? (byName ? imageNameSortKey(query.after.name ?? '', query.after.id) : query.after.id) : undefined;
    const conditions = ['#p = :p'];
    const values: Record<string, unknown> = { ':p': byName ? NAME_PARTITION : listPartition('IMAGE') };
    if (after !== undefined && after >= prefix) {
      conditions.push('#s > :after');
      values[':after'] = after;
    } else if (prefix !== '') {
      conditions.push('begins_with(#s, :prefix)');
      values[':prefix'] = prefix;
    }
    const images: ImageRecord[] = [];
    let read = 0;
    let last: ImageRecord | undefined;
    let startKey: Record<string, unknown> | undefined;
    let ended = false;
    // A full page reads on to one more item (not counted as examined), so the last page has no `next`.
    while (read < query.readBudget) {
      const out = await this.send<{ Items?: Array<Record<string, unknown>>; LastEvaluatedKey?: Record<string, unknown> }>(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: index.name,
          KeyConditionExpression: conditions.join(' AND '),
          ExpressionAttributeNames: { '#p': index.partitionKey, ...(conditions.length > 1 ? { '#s': index.sortKey } : {}) },
          ExpressionAttributeValues: values,
          // Without a filter the page needs exactly one item more than it lacks (to know whether more follow).
          Limit: Math.max(1, Math.min(CHUNK, query.readBudget - read, query.matches ? CHUNK : query.limit - images.length + 1)),
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) {
        // After the cursor, a prefix range ends at the first key that no longer starts with it.
        if (prefix !== '' && !(item[index.sortKey] as string).startsWith(prefix)) {
          ended = true;
          break;
        }
        if (images.length === query.limit) return { images, next: cursorOf(last!, byName), read };
        read++;
        const image = fromStoredDoc<ImageRecord>(item.doc);
        last = image;
        if (answersRecord(image) && (query.matches?.(image) ?? true)) images.push(image);
      }
      startKey = out.LastEvaluatedKey;
      if (ended || !startKey) return { images, read };
    }
    return { images, ...(last ? { next: cursorOf(last, byName) } : {}), read };
  }
}

function cursorOf(image: ImageRecord, byName: boolean): ImageCursor {
  return byName ? { id: image.id, name: image.name } : { id: image.id };
}
