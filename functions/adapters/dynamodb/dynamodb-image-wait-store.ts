import { DeleteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ImageWait, ImageWaitRecorder } from '../../steps/wait-for-images.ts';
import { listAll, translate } from './record-table.ts';
import { listKey, listPartition, recordKey, TABLE_SCHEMA } from './table-schema.ts';

/**
 * Sessions parked in WaitForImages, one `WAIT#<session>` item each on the single table (see
 * table-schema.ts), with the TTL attribute set so a wait nobody ended disappears by itself.
 * A removal can be tied to the token it read, so a newer wait is never dropped by an older wake.
 */
export class DynamoDbImageWaitStore implements ImageWaitRecorder {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Records (or replaces: a session waits once at a time) the session's wait. */
  async put(wait: ImageWait): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...recordKey('WAIT', wait.session), ...listKey('WAIT', wait.session), doc: wait, [TABLE_SCHEMA.ttlAttribute]: wait.expires_at },
        }),
      );
    } catch (error) {
      translate(error);
    }
  }

  async get(session: string): Promise<ImageWait | undefined> {
    try {
      const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: recordKey('WAIT', session), ConsistentRead: true }));
      return out.Item?.doc as ImageWait | undefined;
    } catch (error) {
      translate(error);
    }
  }

  /**
   * Removes the session's wait. With `token`, only while the recorded wait still has that token:
   * a newer wait of the same session (recorded after the token was read) stays.
   */
  async remove(session: string, token?: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: recordKey('WAIT', session),
          ...(token ? { ConditionExpression: '#d.#t = :t', ExpressionAttributeNames: { '#d': 'doc', '#t': 'token' }, ExpressionAttributeValues: { ':t': token } } : {}),
        }),
      );
    } catch (error) {
      if ((error as Error).name !== 'ConditionalCheckFailedException') translate(error);
    }
  }

  /** Every open wait, by session name (the Image Registered trigger picks the ones missing an image). */
  async list(): Promise<ImageWait[]> {
    return listAll<ImageWait>(this.client, this.tableName, listPartition('WAIT'));
  }
}
