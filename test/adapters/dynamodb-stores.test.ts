import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbSessionStore } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';

function session(name: string): SessionRecord {
  return {
    name,
    configuration: { name: 'c', limit: '' },
    ansible: { config: '', limit: '', verbosity: 0, passthrough: '' },
    target: { definition: 'image', groups: [{ name: 'Compute', members: ['00000000-0000-4000-8000-000000000001'] }], image_map: [] },
    tags: {},
    debug_on_failure: false,
    status: { session: { status: 'pending', succeeded: 'none', start_time: '2026-01-01T00:00:00Z' }, artifacts: [], layers: [] },
  };
}

describe('DynamoDbSessionStore on dynalite', () => {
  let dynamo: LocalDynamo;
  let store: DynamoDbSessionStore;
  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: 'test' });
    store = new DynamoDbSessionStore(dynamo.documents, 'test');
  });
  afterAll(async () => dynamo.close());

  it('refuses one of two racing creates of the same name with a ConflictError', async () => {
    // Act
    const results = await Promise.allSettled([store.create(session('race')), store.create(session('race'))]);
    // Assert
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason.name).toBe('ConflictError');
  });

  it('applies concurrent updates without losing either', async () => {
    // Arrange
    await store.create(session('concurrent'));
    // Act
    await Promise.all(
      ['a', 'b', 'c'].map((tag) => store.update('concurrent', (s) => ({ ...s, tags: { ...s.tags, [tag]: '1' } }))),
    );
    // Assert
    expect((await store.get('concurrent'))?.tags).toEqual({ a: '1', b: '1', c: '1' });
  });

  it('lists sessions ordered by name and deletes them', async () => {
    await store.create(session('zz-last'));
    await store.create(session('aa-first'));
    const names = (await store.list()).map((s) => s.name);
    expect(names).toEqual([...names].sort());
    expect(await store.delete('aa-first')).toBe(true);
    expect(await store.delete('aa-first')).toBe(false);
    expect(await store.get('aa-first')).toBeUndefined();
  });
});
