import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbAutomationStore } from '../../functions/adapters/dynamodb/dynamodb-automation-store.ts';
import { DynamoDbConfigurationStore } from '../../functions/adapters/dynamodb/dynamodb-configuration-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { withHistory } from '../../functions/core/automations/automation-record.ts';
import { automationRecord } from '../core/automation-fakes.ts';

describe('DynamoDbAutomationStore on dynalite', () => {
  let dynamo: LocalDynamo;
  let store: DynamoDbAutomationStore;
  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: 'test' });
    store = new DynamoDbAutomationStore(dynamo.documents, 'test');
  });
  afterAll(async () => dynamo.close());

  it('refuses one of two racing creates of the same name with a ConflictError', async () => {
    // Act
    const results = await Promise.allSettled([store.create(automationRecord('race')), store.create(automationRecord('race'))]);
    // Assert
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason.name).toBe('ConflictError');
  });

  it('keeps every history entry of concurrent runs', async () => {
    // Arrange
    await store.create(automationRecord('busy'));
    // Act
    await Promise.all(
      ['a', 'b', 'c', 'd'].map((reason) =>
        store.update('busy', (a) => ({ ...a, history: withHistory(a.history, { time: reason, trigger: 'run', outcome: 'started', reason }) })),
      ),
    );
    // Assert
    expect((await store.get('busy'))!.history.map((h) => h.reason).sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('lists automations by name apart from other kinds and deletes them', async () => {
    // Arrange
    await new DynamoDbConfigurationStore(dynamo.documents, 'test').put({ name: 'a-config', last_updated: '', layers: [] });
    await store.create(automationRecord('zz-last'));
    await store.create(automationRecord('aa-first'));
    // Act
    const names = (await store.list()).map((a) => a.name);
    const deleted = await store.delete('zz-last');
    const again = await store.delete('zz-last');
    // Assert
    expect(names).toEqual(['aa-first', 'busy', 'race', 'zz-last']);
    expect([deleted, again]).toEqual([true, false]);
    expect(await store.get('zz-last')).toBeUndefined();
  });
});
