import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SessionRecord } from '../../core/model/session.ts';
import type { SessionStore } from '../../ports/session-store.ts';
import { RecordTable } from './record-table.ts';

/** Sessions on the single table (AWS DynamoDB or dynalite). */
export class DynamoDbSessionStore implements SessionStore {
  private readonly table: RecordTable<SessionRecord>;

  constructor(client: DynamoDBDocumentClient, tableName: string) {
    this.table = new RecordTable(client, tableName, 'SESSION', (s) => s.name, 'session');
  }

  create(session: SessionRecord) {
    return this.table.create(session);
  }
  get(name: string) {
    return this.table.get(name);
  }
  list() {
    return this.table.list();
  }
  update(name: string, change: (current: SessionRecord) => SessionRecord) {
    return this.table.update(name, change);
  }
  delete(name: string) {
    return this.table.delete(name);
  }
}
