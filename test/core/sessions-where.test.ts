import { describe, expect, it } from 'vitest';
import { sessionsWhere, sessionsWhereAny } from '../../functions/core/sessions/sessions-where.ts';
import type { SessionPageRequest } from '../../functions/ports/session-store.ts';
import { MemorySessions } from '../helpers/cfs-fakes.ts';
import { listedSession } from '../helpers/listing-seed.ts';

describe('sessionsWhere and sessionsWhereAny', () => {
  it('reads every page of a filter, page by page, and nothing that does not match', async () => {
    // Arrange
    const store = new MemorySessions();
    for (let i = 0; i < 7; i++) await store.create(listedSession(`run-${i}`, { status: 'running' }));
    await store.create(listedSession('done', { status: 'complete' }));
    const requests: SessionPageRequest[] = [];
    const query = store.query.bind(store);
    store.query = (request) => (requests.push(request), query(request));
    // Act
    const found = await sessionsWhere(store, { status: 'running' }, 3);
    // Assert
    expect(found.map((s) => s.name)).toEqual(['run-0', 'run-1', 'run-2', 'run-3', 'run-4', 'run-5', 'run-6']);
    expect(requests.map((r) => r.after)).toEqual([undefined, 'run-2', 'run-5']);
  });

  it('gives a session that moved between two statuses during the reads once, as first read', async () => {
    // Arrange: `moving` is pending when the pending page is read, running when the running page is.
    const store = new MemorySessions();
    await store.create(listedSession('moving', { status: 'pending' }));
    await store.create(listedSession('steady', { status: 'running' }));
    const query = store.query.bind(store);
    store.query = async (request) => {
      const page = await query(request);
      if (request.filter.status === 'pending') await store.update('moving', (s) => ({ ...s, status: { ...s.status, session: { ...s.status.session, status: 'running' } } }));
      return page;
    };
    // Act
    const found = await sessionsWhereAny(store, [{ status: 'pending' }, { status: 'running' }]);
    // Assert
    expect(found.map((s) => [s.name, s.status.session.status])).toEqual([
      ['moving', 'pending'],
      ['steady', 'running'],
    ]);
  });
});
