import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ImageRecord } from '../../core/model/image.ts';
import type { ImageRegistry } from '../../ports/image-registry.ts';
import { RecordTable, type RecordTableOptions } from './record-table.ts';

/** IMS image records on the single table (AWS DynamoDB or dynalite). */
export class DynamoDbImageRegistry implements ImageRegistry {
  private readonly table: RecordTable<ImageRecord>;

  constructor(client: DynamoDBDocumentClient, tableName: string, options: RecordTableOptions = {}) {
    this.table = new RecordTable(client, tableName, 'IMAGE', (i) => i.id, 'image', undefined, options);
  }

  create(image: ImageRecord) {
    return this.table.create(image);
  }
  get(id: string) {
    return this.table.get(id);
  }
  list() {
    return this.table.list();
  }
  update(id: string, change: (current: ImageRecord) => ImageRecord) {
    return this.table.update(id, change);
  }
  delete(id: string) {
    return this.table.delete(id);
  }
}
