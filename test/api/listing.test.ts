import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbConfigurationStore } from '../../functions/adapters/dynamodb/dynamodb-configuration-store.ts';
import { DynamoDbSessionStore } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { createApp } from '../../functions/api/app.ts';
import { rfc3339 } from '../../functions/core/sessions/rfc3339.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { storedConfiguration } from '../helpers/cfs-fakes.ts';
import { listedSession, seedConfigurations, seedSessions } from '../helpers/listing-seed.ts';
import { call, startCfsTestApp, type CfsTestApp } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

const HOUR = 3_600_000;
const ago = (hours: number) => rfc3339(new Date(Date.now() - hours * HOUR));

/** 24 sessions: statuses, outcomes, ages (0-95 h) and automation tags mixed. */
const FLEET = Array.from({ length: 24 }, (_, i) =>
  listedSession(`fleet-${String(i).padStart(2, '0')}`, {
    status: i % 6 === 0 ? 'running' : i % 6 === 1 ? 'pending' : 'complete',
    succeeded: i % 6 < 2 ? 'none' : i % 4 === 0 ? 'false' : 'true',
    start: ago(i * 4),
    tags: i % 3 === 0 ? { automation: 'nightly' } : {},
  }),
);

const names = (list: Array<{ name: string }>) => list.map((s) => s.name);
const toQuery = (next: Record<string, string | number>) => new URLSearchParams(Object.entries(next).map(([k, v]): [string, string] => [k, String(v)])).toString();

describe('CFS listings through the API (dynalite)', () => {
  let t: CfsTestApp;
  beforeAll(async () => {
    t = await startCfsTestApp();
    for (const s of FLEET) await t.ports.sessions.create({ ...s, status: { ...s.status, session: { ...s.status.session, job: `execution-${s.name}` } } });
  });
  afterAll(() => t.close());

  it('pages v3 sessions by a filter, each answer valid against the spec, following next to the end', async () => {
    // Arrange
    const seen: string[] = [];
    let path = '/apis/cfs/v3/sessions?status=complete&succeeded=True&limit=4';
    const nexts: unknown[] = [];
    // Act
    for (;;) {
      const res = await call(t.app, 'GET', path);
      expect(res.status).toBe(200);
      expect(await cfsResponseErrors('get', '/v3/sessions', 200, res.body)).toBeUndefined();
      seen.push(...names(res.body.sessions));
      nexts.push(res.body.next);
      if (!res.body.next) break;
      path = `/apis/cfs/v3/sessions?${toQuery(res.body.next)}`;
    }
    // Assert
    expect(seen).toEqual(names(FLEET.filter((s) => s.status.session.status === 'complete' && s.status.session.succeeded === 'true')));
    expect(nexts[0]).toEqual({ status: 'complete', succeeded: 'True', limit: 4, after_id: seen[3] });
    expect(nexts.at(-1)).toBeNull();
  });

  it('filters by age and tags in v3 and v2, v2 answering a bare array valid against the spec', async () => {
    // Act
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/sessions?tags=automation%3Dnightly&min_age=10h&max_age=3d');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions?tags=automation%3Dnightly&age=10h&max_age=3d');
    // Assert
    const want = ['fleet-03', 'fleet-06', 'fleet-09', 'fleet-12', 'fleet-15'];
    expect(names(v3.body.sessions)).toEqual(want);
    expect(v3.body.next).toBeNull();
    expect(Array.isArray(v2.body)).toBe(true);
    expect(names(v2.body)).toEqual(want);
    expect(await cfsResponseErrors('get', '/v2/sessions', 200, v2.body)).toBeUndefined();
  });

  it('refuses a bad filter with a 400 problem naming the parameter', async () => {
    // Act
    const res = await call(t.app, 'GET', '/apis/cfs/v3/sessions?max_age=yesterday');
    // Assert
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toMatchObject({ field: 'max_age', title: 'Bad Request' });
    expect(await cfsResponseErrors('get', '/v3/sessions', 400, res.body)).toBeUndefined();
  });

  it('answers v2 with 400 "too large" once more sessions match than default_page_size, and v3 pages at that size', async () => {
    // Arrange
    const patched = await call(t.app, 'PATCH', '/apis/cfs/v3/options', { default_page_size: 10 });
    // Act
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions');
    const v2Filtered = await call(t.app, 'GET', '/apis/cfs/v2/sessions?status=running');
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/sessions');
    await call(t.app, 'PATCH', '/apis/cfs/v3/options', { default_page_size: 1000 });
    // Assert
    expect(patched.status).toBe(200);
    expect(v2.status).toBe(400);
    expect(v2.body.detail).toContain('The response size is too large: more than 10 sessions match');
    expect(names(v2Filtered.body)).toEqual(['fleet-00', 'fleet-06', 'fleet-12', 'fleet-18']);
    expect(v3.body.sessions).toHaveLength(10);
    expect(v3.body.next).toEqual({ limit: 10, after_id: 'fleet-09' });
  });

  it('pages configurations in v3 and lists them whole in v2', async () => {
    // Arrange
    for (const name of ['conf-b', 'conf-a', 'conf-c']) await t.ports.configurations.put(storedConfiguration(name));
    // Act
    const first = await call(t.app, 'GET', '/apis/cfs/v3/configurations?limit=2');
    const second = await call(t.app, 'GET', `/apis/cfs/v3/configurations?${toQuery(first.body.next)}`);
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/configurations');
    // Assert
    expect(names(first.body.configurations)).toEqual(['conf-a', 'conf-b']);
    expect(first.body.next).toEqual({ limit: 2, after_id: 'conf-b' });
    expect(names(second.body.configurations)).toEqual(['conf-c']);
    expect(second.body.next).toBeNull();
    expect(names(v2.body)).toEqual(['conf-a', 'conf-b', 'conf-c']);
    expect(await cfsResponseErrors('get', '/v3/configurations', 200, first.body)).toBeUndefined();
  });

  it('bulk deletes in v3 exactly the matching sessions (complete by default), answering their names valid against the spec', async () => {
    // Arrange
    const before = names((await call(t.app, 'GET', '/apis/cfs/v3/sessions')).body.sessions);
    const want = names(FLEET.filter((s) => s.status.session.status === 'complete' && s.status.session.succeeded === 'false' && Date.parse(s.status.session.start_time) < Date.now() - 20 * HOUR));
    // Act
    const res = await call(t.app, 'DELETE', '/apis/cfs/v3/sessions?succeeded=false&min_age=20h');
    const after = names((await call(t.app, 'GET', '/apis/cfs/v3/sessions')).body.sessions);
    // Assert
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ session_ids: want });
    expect(want.length).toBeGreaterThan(1);
    expect(await cfsResponseErrors('delete', '/v3/sessions', 200, res.body)).toBeUndefined();
    expect(after).toEqual(before.filter((n) => !want.includes(n)));
    expect(t.workflow.stopped).toEqual([]);
  });

  it('bulk deletes in v2 with 204, stopping the running sessions it deletes the way a single delete does', async () => {
    // Act
    const res = await call(t.app, 'DELETE', '/apis/cfs/v2/sessions?status=running&tags=automation%3Dnightly');
    const left = names((await call(t.app, 'GET', '/apis/cfs/v3/sessions?status=running')).body.sessions);
    // Assert
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(t.workflow.stopped.map((s) => s.name).sort()).toEqual(['fleet-00', 'fleet-06', 'fleet-12', 'fleet-18']);
    expect(t.workflow.stopped.find((s) => s.name === 'fleet-00')?.job).toBe('execution-fleet-00');
    expect(left).toEqual([]);
  });

  it('refuses paging parameters on a bulk delete and deletes nothing', async () => {
    // Arrange
    const before = (await call(t.app, 'GET', '/apis/cfs/v3/sessions')).body.sessions.length;
    // Act
    const res = await call(t.app, 'DELETE', '/apis/cfs/v3/sessions?status=&after_id=x');
    // Assert
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('after_id');
    expect((await call(t.app, 'GET', '/apis/cfs/v3/sessions')).body.sessions.length).toBe(before);
  });
});

/**
 * 3,000 sessions `fleet-0000`.. in one table: the first 1,200 running, each naming its own
 * configuration `cfg-0000`..; 13 of the last 500 named `-needle`. 1,300 configurations.
 */
const BIG_FLEET = Array.from({ length: 3_000 }, (_, i) => {
  const session = listedSession(`fleet-${String(i).padStart(4, '0')}${i >= 2_500 && i % 40 === 20 ? '-needle' : ''}`, { status: i < 1_200 ? 'running' : 'complete' });
  return i < 1_200 ? { ...session, configuration: { name: `cfg-${String(i).padStart(4, '0')}`, limit: '' } } : session;
});
const NEEDLES = names(BIG_FLEET.filter((s) => s.name.endsWith('-needle')));

describe('filtered listings over thousands of records (dynalite)', () => {
  let dynamo: LocalDynamo;
  let base: CfsTestApp;
  let ports: AppPorts;
  let app: ReturnType<typeof createApp>;
  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: 'big-listing' });
    base = await startCfsTestApp();
    ports = { ...base.ports, sessions: new DynamoDbSessionStore(dynamo.documents, 'big-listing'), configurations: new DynamoDbConfigurationStore(dynamo.documents, 'big-listing') };
    app = createApp(ports);
    await seedSessions(dynamo.documents, 'big-listing', BIG_FLEET);
    await seedConfigurations(dynamo.documents, 'big-listing', Array.from({ length: 1_300 }, (_, i) => storedConfiguration(`cfg-${String(i).padStart(4, '0')}`)));
  }, 180_000);
  afterAll(async () => {
    await base.close();
    await dynamo.close();
  });

  it('finds name_contains matches past the first 2,500 sessions in one request, and the rest from its next', async () => {
    // Act
    const first = await call(app, 'GET', '/apis/cfs/v3/sessions?name_contains=needle&limit=10');
    const rest = await call(app, 'GET', `/apis/cfs/v3/sessions?${toQuery(first.body.next)}`);
    // Assert
    expect(NEEDLES).toHaveLength(13);
    expect(names(first.body.sessions)).toEqual(NEEDLES.slice(0, 10));
    expect(first.body.next).toEqual({ name_contains: 'needle', limit: 10, after_id: NEEDLES[9] });
    expect(names(rest.body.sessions)).toEqual(NEEDLES.slice(10));
    expect(rest.body.next).toBeNull();
    expect(await cfsResponseErrors('get', '/v3/sessions', 200, first.body)).toBeUndefined();
  });

  it('answers a page cut short by the time budget with next saying the search stopped early, valid against the spec, and following it finds every match', async () => {
    // Arrange: 6 s pass per clock read, so a request reads two store pages (2,000 sessions) before its 10 s are spent.
    let now = Date.now();
    const slow = createApp({ ...ports, clock: { now: () => new Date((now += 6_000)) } });
    const seen: string[] = [];
    const nexts: unknown[] = [];
    // Act
    let path = '/apis/cfs/v3/sessions?name_contains=needle&limit=20';
    for (;;) {
      const res = await call(slow, 'GET', path);
      expect(res.status).toBe(200);
      expect(await cfsResponseErrors('get', '/v3/sessions', 200, res.body)).toBeUndefined();
      seen.push(...names(res.body.sessions));
      nexts.push(res.body.next);
      if (!res.body.next) break;
      path = `/apis/cfs/v3/sessions?${toQuery(res.body.next)}`;
    }
    // Assert
    expect(nexts[0]).toEqual({ name_contains: 'needle', limit: 20, after_id: 'fleet-1999', search_stopped_early: true });
    expect(seen).toEqual(NEEDLES);
    expect(nexts.at(-1)).toBeNull();
  });

  it('lists configurations not in use past the 1,200 that running sessions use, in one request', async () => {
    // Act
    const unused = await call(app, 'GET', '/apis/cfs/v3/configurations?in_use=false&limit=5');
    const used = await call(app, 'GET', '/apis/cfs/v3/configurations?in_use=True&limit=3');
    const v2 = await call(app, 'GET', '/apis/cfs/v2/configurations?in_use=false');
    // Assert
    expect(names(unused.body.configurations)).toEqual(['cfg-1200', 'cfg-1201', 'cfg-1202', 'cfg-1203', 'cfg-1204']);
    expect(unused.body.next).toEqual({ in_use: 'false', limit: 5, after_id: 'cfg-1204' });
    expect(names(used.body.configurations)).toEqual(['cfg-0000', 'cfg-0001', 'cfg-0002']);
    expect(used.body.next).toEqual({ in_use: 'True', limit: 3, after_id: 'cfg-0002' });
    expect(names(v2.body)).toHaveLength(100);
    expect(await cfsResponseErrors('get', '/v3/configurations', 200, unused.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/configurations', 200, v2.body)).toBeUndefined();
  });

  it('documents in_use (a boolean) on both configuration listings and search_stopped_early in the served OpenAPI document', async () => {
    // Act
    const doc = (await call(app, 'GET', '/apis/cfs/openapi.json')).body;
    // Assert
    for (const version of ['v2', 'v3']) {
      expect(doc.paths[`/apis/cfs/${version}/configurations`].get.parameters).toContainEqual(expect.objectContaining({ name: 'in_use', in: 'query', schema: { type: 'boolean' } }));
    }
    expect(doc.paths['/apis/cfs/v3/sessions'].get.parameters.map((p: { name: string }) => p.name)).toContain('search_stopped_early');
  });

  it('refuses in_use values other than true or false with a 400 naming it', async () => {
    // Act
    const res = await call(app, 'GET', '/apis/cfs/v2/configurations?in_use=maybe');
    // Assert
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ field: 'in_use', detail: 'in_use: query parameter must be true or false' });
  });
});
