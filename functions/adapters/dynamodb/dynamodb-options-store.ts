import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError, TransientError } from '../../core/errors.ts';
import type { ProductOptions, StoredOptions } from '../../core/options/options-schemas.ts';
import type { OptionsStore } from '../../ports/options-store.ts';
import { RecordTable, type RecordTableOptions } from './record-table.ts';

/** The one options record's id (pk `OPTIONS#cfs`). */
const OPTIONS_ID = 'cfs';
const MAX_ATTEMPTS = 10;

/** The service options as one versioned item on the single table (AWS DynamoDB or dynalite). */
export class DynamoDbOptionsStore implements OptionsStore {
  private readonly table: RecordTable<StoredOptions>;

  constructor(
    client: DynamoDBDocumentClient,
    tableName: string,
    readonly defaults: ProductOptions,
    options: RecordTableOptions = {},
  ) {
    this.table = new RecordTable<StoredOptions>(client, tableName, 'OPTIONS', () => OPTIONS_ID, 'options', undefined, options);
  }

  async get(): Promise<StoredOptions> {
    return (await this.table.get(OPTIONS_ID)) ?? {};
  }

  /** Updates the record, creating it on the first change (two first changes racing: one retries as an update). */
  async update(change: (current: StoredOptions) => StoredOptions): Promise<StoredOptions> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        return await this.table.update(OPTIONS_ID, change);
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
      }
      const created = change({});
      try {
        await this.table.create(created);
        return created;
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    }
    throw new TransientError(`options changed concurrently ${MAX_ATTEMPTS} times; try again`);
  }
}
