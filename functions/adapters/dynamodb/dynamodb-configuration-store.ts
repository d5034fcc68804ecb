import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConfigurationRecord } from '../../core/model/configuration.ts';
import type { ConfigurationStore } from '../../ports/configuration-store.ts';
import { RecordTable, type RecordTableOptions } from './record-table.ts';

/** Configurations on the single table (AWS DynamoDB or dynalite). */
export class DynamoDbConfigurationStore implements ConfigurationStore {
  private readonly table: RecordTable<ConfigurationRecord>;

  constructor(client: DynamoDBDocumentClient, tableName: string, options: RecordTableOptions = {}) {
    this.table = new RecordTable(client, tableName, 'CONFIG', (c) => c.name, 'configuration', undefined, options);
  }

  put(configuration: ConfigurationRecord) {
    return this.table.put(configuration);
  }
  get(name: string) {
    return this.table.get(name);
  }
  list() {
    return this.table.list();
  }
  async page(limit: number, after?: string) {
    const { records, next } = await this.table.page(limit, after);
    return { configurations: records, ...(next !== undefined ? { next } : {}) };
  }
  delete(name: string) {
    return this.table.delete(name);
  }
}
