import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SourceRecord } from '../../core/sources/source-record.ts';
import type { SourceStore } from '../../ports/source-store.ts';
import { RecordTable, type RecordTableOptions } from './record-table.ts';

/** CFS v3 sources on the single table (AWS DynamoDB or dynalite); their credentials are elsewhere (SourceSecretStore). */
export class DynamoDbSourceStore implements SourceStore {
  private readonly table: RecordTable<SourceRecord>;

  constructor(client: DynamoDBDocumentClient, tableName: string, options: RecordTableOptions = {}) {
    this.table = new RecordTable(client, tableName, 'SOURCE', (s) => s.name, 'source', undefined, options);
  }

  create(source: SourceRecord) {
    return this.table.create(source);
  }
  put(source: SourceRecord) {
    return this.table.put(source);
  }
  get(name: string) {
    return this.table.get(name);
  }
  list() {
    return this.table.list();
  }
  async page(limit: number, after?: string) {
    const { records, next } = await this.table.page(limit, after);
    return { sources: records, ...(next !== undefined ? { next } : {}) };
  }
  delete(name: string) {
    return this.table.delete(name);
  }
}
