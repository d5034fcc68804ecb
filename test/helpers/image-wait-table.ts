import { afterAll, beforeAll } from 'vitest';
import { DynamoDbImageWaitStore } from '../../functions/adapters/dynamodb/dynamodb-image-wait-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';

/**
 * Registers the suite's hooks for image waits on dynalite: the table `table`, and fake AWS
 * credentials in the environment for the mocked SDK clients beside it (restored after the suite).
 * `waits` is set once the suite's beforeAll has run.
 */
export function imageWaitTable(table: string): { waits: DynamoDbImageWaitStore } {
  const holder = {} as { waits: DynamoDbImageWaitStore };
  const saved = { ...process.env };
  let dynamo: LocalDynamo | undefined;
  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: table });
    Object.assign(process.env, { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
    holder.waits = new DynamoDbImageWaitStore(dynamo.documents, table);
  });
  afterAll(async () => {
    process.env = saved;
    await dynamo?.close();
  });
  return holder;
}
