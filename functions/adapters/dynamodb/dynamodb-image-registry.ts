import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ImageRecord } from '../../core/model/image.ts';
import { answersRecord, type ImageReadOptions, type ImageRegistry } from '../../ports/image-registry.ts';
import { RecordTable, type RecordTableOptions } from './record-table.ts';

/** IMS image records on the single table (AWS DynamoDB or dynalite); results pending their session are hidden from reads unless asked for. */
export class DynamoDbImageRegistry implements ImageRegistry {
  private readonly table: RecordTable<ImageRecord>;

  constructor(client: DynamoDBDocumentClient, tableName: string, options: RecordTableOptions = {}) {
    this.table = new RecordTable(client, tableName, 'IMAGE', (i) => i.id, 'image', undefined, options);
  }

  create(image: ImageRecord) {
    return this.table.create(image);
  }
  async get(id: string, options?: ImageReadOptions) {
    const image = await this.table.get(id);
    return image && answersRecord(image, options) ? image : undefined;
  }
  async list(options?: ImageReadOptions) {
    return (await this.table.list()).filter((image) => answersRecord(image, options));
  }
  update(id: string, change: (current: ImageRecord) => ImageRecord) {
    return this.table.update(id, change);
  }
  delete(id: string) {
    return this.table.delete(id);
  }
}
