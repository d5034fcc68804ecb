import { describe, expect, it } from 'vitest';
import { deleteConfiguration } from '../../functions/core/configurations/configuration-use-cases.ts';
import type { SessionRecord, SessionStatus } from '../../functions/core/model/session.ts';
import { deleteSessionsByFilter } from '../../functions/core/sessions/bulk-delete.ts';
import { ageSeconds } from '../../functions/core/sessions/age.ts';
import { filterFromParams, parseTagsParam, sessionMatches } from '../../functions/core/sessions/filters.ts';
import { LISTING_TIME_BUDGET_MS, listConfigurationPage, listConfigurationsV2, listSessionPage, listSessionsV2 } from '../../functions/core/sessions/list-sessions.ts';
import { parseQueryParams, v3SessionListParamsSchema } from '../../functions/core/sessions/query-params.ts';
import type { SessionPageRequest } from '../../functions/ports/session-store.ts';
import { fakeCfsPorts, MemorySessions, storedConfiguration } from '../helpers/cfs-fakes.ts';
import { listedSession } from '../helpers/listing-seed.ts';
import { automationRecord, MemoryAutomations } from './automation-fakes.ts';

const NOW = '2026-11-26T12:00:00Z';
const q = (params: Record<string, string>) => Object.fromEntries(Object.entries(params).map(([k, v]) => [k, [v]]));

/** Ports with a mix of statuses, outcomes, ages and tags. */
async function fleet() {
  const ports = fakeCfsPorts(NOW);
  const sessions = [
    listedSession('nightly-old-ok', { status: 'complete', succeeded: 'true', start: '2026-11-01T00:00:00Z', tags: { automation: 'nightly', site: 'a' } }),
    listedSession('nightly-old-failed', { status: 'complete', succeeded: 'false', start: '2026-11-02T00:00:00Z', tags: { automation: 'nightly', site: 'b' } }),
    listedSession('nightly-new-ok', { status: 'complete', succeeded: 'true', start: '2026-11-26T11:00:00Z', tags: { automation: 'nightly', site: 'a' } }),
    listedSession('nightly-running', { status: 'running', start: '2026-11-26T11:30:00Z', tags: { automation: 'nightly', site: 'a' } }),
    listedSession('manual-old-ok', { status: 'complete', succeeded: 'true', start: '2026-10-01T00:00:00Z' }),
    listedSession('manual-pending', { status: 'pending', start: '2026-11-26T11:59:00Z' }),
    listedSession('manual-running-old', { status: 'running', start: '2026-11-10T00:00:00Z' }),
  ];
  for (const s of sessions) {
    s.status.session.job = `execution-${s.name}`;
    await ports.sessions.create(s);
  }
  return ports;
}

describe('the CFS session filters', () => {
  it.each([
    ['30m', 1800],
    ['1h', 3600],
    ['2d', 172_800],
    ['3w', 1_814_400],
    ['4H', 14_400],
    ['', undefined],
  ])('reads the age %j as %j seconds', (age, seconds) => {
    // Act / Assert
    expect(ageSeconds(age, 'min_age')).toBe(seconds);
  });

  it.each(['1y', '1.5h', 'h', '-1d', '1h2m'])('refuses the age %j naming the parameter', (age) => {
    // Act / Assert
    expect(() => ageSeconds(age, 'max_age')).toThrow(/^max_age: must be a number followed by m, h, d or w/);
  });

  it('reads tags as key=value pairs, all of which must match, and refuses a pair without =', () => {
    // Act
    const tags = parseTagsParam('automation=nightly,site=a,,note=x=y');
    // Assert
    expect(tags).toEqual({ automation: 'nightly', site: 'a', note: 'x=y' });
    expect(() => parseTagsParam('automation')).toThrow("tags: takes key=value pairs separated by commas, not 'automation'");
    expect(sessionMatches(listedSession('s', { tags: { automation: 'nightly' } }), { tags: { automation: 'nightly', site: 'a' } })).toBe(false);
  });

  it('turns min_age and max_age into start-time bounds at the given time, and v2 age into min_age', () => {
    // Act
    const filter = filterFromParams({ min_age: '1d', max_age: '3w', age: '2d' }, new Date(NOW));
    // Assert
    expect(filter).toEqual({ startedBefore: '2026-11-24T12:00:00Z', startedAfter: '2026-11-05T12:00:00Z' });
  });

  it('parses succeeded and status case-insensitively, as cray sends True', () => {
    // Act
    const params = parseQueryParams(v3SessionListParamsSchema, q({ succeeded: 'True', status: 'Complete', limit: '5' }));
    // Assert
    expect(params).toEqual({ succeeded: 'true', status: 'complete', limit: 5 });
  });

  it.each([
    ['status', 'done', 'status: query parameter must be one of pending, running, complete (or empty)'],
    ['succeeded', 'yes', 'succeeded: query parameter must be one of none, true, false, unknown (or empty)'],
    ['limit', '0', 'limit: query parameter must be an integer of at least 1'],
    ['limit', 'ten', 'limit: query parameter must be an integer of at least 1'],
    ['min_age', '7 days', 'min_age: query parameter must be a number followed by m, h, d or w'],
    ['in_use', 'true', 'in_use: query parameter is not supported here'],
  ])('refuses %s=%s with a 400 naming the parameter', (name, value, message) => {
    // Act / Assert
    expect(() => parseQueryParams(v3SessionListParamsSchema, q({ [name]: value }))).toThrow(message);
  });

  it('refuses a parameter given twice', () => {
    // Act / Assert
    expect(() => parseQueryParams(v3SessionListParamsSchema, { status: ['pending', 'running'] })).toThrow('status: query parameter is given more than once');
  });
});

describe('listing sessions (v3 pages, v2 whole lists)', () => {
  it('answers one page in name order with next carrying every parameter of the request', async () => {
    // Arrange
    const ports = await fleet();
    // Act
    const first = await listSessionPage(ports, q({ tags: 'automation=nightly', status: 'complete', limit: '2' }));
    const second = await listSessionPage(ports, q(Object.fromEntries(Object.entries(first.next!).map(([k, v]) => [k, String(v)]))));
    // Assert
    expect(first.sessions.map((s) => s.name)).toEqual(['nightly-new-ok', 'nightly-old-failed']);
    expect(first.next).toEqual({ tags: 'automation=nightly', status: 'complete', limit: 2, after_id: 'nightly-old-failed' });
    expect(second.sessions.map((s) => s.name)).toEqual(['nightly-old-ok']);
    expect(second.next).toBeNull();
  });

  it('combines every filter: outcome, ages, tags and a name substring', async () => {
    // Arrange
    const ports = await fleet();
    // Act
    const page = await listSessionPage(ports, q({ succeeded: 'TRUE', min_age: '1d', max_age: '4w', tags: 'site=a', name_contains: 'old' }));
    // Assert
    expect(page.sessions.map((s) => s.name)).toEqual(['nightly-old-ok']);
    expect(page.next).toBeNull();
  });

  it('takes the page size from the default_page_size option when no limit is given', async () => {
    // Arrange
    const ports = await fleet();
    await ports.options.update((o) => ({ ...o, default_page_size: 3 }));
    // Act
    const page = await listSessionPage(ports, {});
    // Assert
    expect(page.sessions).toHaveLength(3);
    expect(page.next).toEqual({ limit: 3, after_id: 'manual-running-old' });
  });

  it('answers v2 with the whole filtered list, and 400 once more sessions match than default_page_size', async () => {
    // Arrange
    const ports = await fleet();
    await ports.options.update((o) => ({ ...o, default_page_size: 4 }));
    // Act
    const fits = await listSessionsV2(ports, q({ age: '1d' }));
    const tooLarge = await listSessionsV2(ports, {}).catch((error: Error) => error);
    // Assert
    expect(fits.map((s) => s.name)).toEqual(['manual-old-ok', 'manual-running-old', 'nightly-old-failed', 'nightly-old-ok']);
    expect(tooLarge).toMatchObject({ name: 'ValidationError' });
    expect((tooLarge as Error).message).toMatch(/^The response size is too large: more than 4 sessions match/);
  });

  it('pages configurations in name order, and refuses a v2 list larger than the page size', async () => {
    // Arrange
    const ports = fakeCfsPorts(NOW);
    for (const name of ['c-3', 'c-1', 'c-2']) await ports.configurations.put(storedConfiguration(name));
    await ports.options.update((o) => ({ ...o, default_page_size: 2 }));
    // Act
    const first = await listConfigurationPage(ports, {});
    const rest = await listConfigurationPage(ports, q({ after_id: first.next!.after_id as string }));
    const v2 = await listConfigurationsV2(ports, {}).catch((error: Error) => error);
    // Assert
    expect(first.configurations.map((c) => c.name)).toEqual(['c-1', 'c-2']);
    expect(first.next).toEqual({ limit: 2, after_id: 'c-2' });
    expect(rest.configurations.map((c) => c.name)).toEqual(['c-3']);
    expect(rest.next).toBeNull();
    expect((v2 as Error).message).toMatch(/^The response size is too large: more than 2 configurations match/);
  });
});

describe('bulk delete by filter', () => {
  it('deletes exactly the complete sessions older than a day by default status, leaving the running and the young', async () => {
    // Arrange
    const ports = await fleet();
    // Act
    const deleted = await deleteSessionsByFilter(ports, q({ min_age: '1d' }), 'v3');
    // Assert
    expect(deleted).toEqual(['manual-old-ok', 'nightly-old-failed', 'nightly-old-ok']);
    expect((await ports.sessions.list()).map((s) => s.name)).toEqual(['manual-pending', 'manual-running-old', 'nightly-new-ok', 'nightly-running']);
    expect(ports.workflow.stopped).toEqual([]);
  });

  it('deletes by tags and outcome only what matches every filter', async () => {
    // Arrange
    const ports = await fleet();
    // Act
    const deleted = await deleteSessionsByFilter(ports, q({ tags: 'automation=nightly,site=a', succeeded: 'true' }), 'v3');
    // Assert
    expect(deleted).toEqual(['nightly-new-ok', 'nightly-old-ok']);
    expect(await ports.sessions.get('nightly-old-failed')).toBeDefined();
    expect(await ports.sessions.get('nightly-running')).toBeDefined();
  });

  it('stops running sessions through the single delete when status is running, and takes an empty status as any', async () => {
    // Arrange
    const ports = await fleet();
    // Act
    const running = await deleteSessionsByFilter(ports, q({ status: 'running', max_age: '1d' }), 'v3');
    const rest = await deleteSessionsByFilter(ports, q({ status: '', name_contains: 'manual' }), 'v2');
    // Assert
    expect(running).toEqual(['nightly-running']);
    expect(rest).toEqual(['manual-old-ok', 'manual-pending', 'manual-running-old']);
    expect(ports.workflow.stopped.map((s) => s.name).sort()).toEqual(['manual-pending', 'manual-running-old', 'nightly-running']);
    expect((await ports.sessions.list()).map((s) => s.name)).toEqual(['nightly-new-ok', 'nightly-old-failed', 'nightly-old-ok']);
  });

  it('refuses paging parameters, which a bulk delete does not take', async () => {
    // Arrange
    const ports = await fleet();
    // Act
    const refused = await deleteSessionsByFilter(ports, q({ limit: '5' }), 'v3').catch((error: Error) => error);
    // Assert
    expect(refused).toMatchObject({ name: 'ValidationError', field: 'limit' });
    expect(await ports.sessions.list()).toHaveLength(7);
  });
});

/**
 * MemorySessions whose query examines at most `perCall` sessions, as the DynamoDB store's read
 * budget does: past it, a short page whose next is the last name examined.
 */
class BudgetedSessions extends MemorySessions {
  calls = 0;
  constructor(private readonly perCall: number) {
    super();
  }
  override async query({ filter, limit, after }: SessionPageRequest) {
    this.calls++;
    const rest = (await this.list()).filter((s) => after === undefined || s.name > after);
    const found: SessionRecord[] = [];
    for (let i = 0; i < rest.length; i++) {
      if (i === this.perCall) return { sessions: found, next: rest[i - 1]!.name };
      if (!sessionMatches(rest[i]!, filter)) continue;
      found.push(rest[i]!);
      if (found.length > limit) return { sessions: found.slice(0, limit), next: found[limit - 1]!.name };
    }
    return { sessions: found };
  }
}

/** 40 sessions `s-00`..`s-39`; the even ones from 30 on are named `-hit`. */
async function sparseFleet(perCall: number) {
  const ports = fakeCfsPorts(NOW);
  const sessions = new BudgetedSessions(perCall);
  for (let i = 0; i < 40; i++) await sessions.create(listedSession(`s-${String(i).padStart(2, '0')}${i >= 30 && i % 2 === 0 ? '-hit' : ''}`));
  return { ...ports, sessions };
}
const HITS = ['s-30-hit', 's-32-hit', 's-34-hit', 's-36-hit', 's-38-hit'];

/** A clock that moves on `stepMs` every time it is read: a search that reads the clock per store page spends its budget in a few pages. */
function steppingClock(stepMs: number) {
  let now = Date.parse(NOW);
  return { now: () => new Date((now += stepMs)) };
}

const asQuery = (next: Record<string, string | number | boolean>) => q(Object.fromEntries(Object.entries(next).map(([k, v]) => [k, String(v)])));

describe('filtered listings that find what matches', () => {
  it('keeps reading short store pages in one request until it has limit matches far past the first ones', async () => {
    // Arrange: the store examines 5 sessions per call; the matches start at the 31st.
    const ports = await sparseFleet(5);
    // Act
    const page = await listSessionPage(ports, q({ name_contains: 'hit', limit: '3' }));
    // Assert
    expect(page.sessions.map((s) => s.name)).toEqual(HITS.slice(0, 3));
    expect(page.next).toEqual({ name_contains: 'hit', limit: 3, after_id: 's-34-hit' });
    expect(ports.sessions.calls).toBe(7);
  });

  it('answers a short page whose next says the search stopped early once the time budget is spent, and following next finds every match', async () => {
    // Arrange: 4 s pass per clock read, so a request reads 3 store pages (15 sessions) before its 10 s are spent.
    const ports = { ...(await sparseFleet(5)), clock: steppingClock(4_000) };
    const pages: Array<Awaited<ReturnType<typeof listSessionPage>>> = [];
    // Act
    let query = q({ name_contains: 'hit', limit: '3' });
    for (;;) {
      const page = await listSessionPage(ports, query);
      pages.push(page);
      if (!page.next) break;
      query = asQuery(page.next);
    }
    // Assert
    expect(LISTING_TIME_BUDGET_MS).toBe(10_000);
    expect(pages[0]).toEqual({ sessions: [], next: { name_contains: 'hit', limit: 3, after_id: 's-14', search_stopped_early: true } });
    expect(pages[1]!.next).toEqual({ name_contains: 'hit', limit: 3, after_id: 's-29', search_stopped_early: true });
    expect(pages[2]!.next).toEqual({ name_contains: 'hit', limit: 3, after_id: 's-34-hit' });
    expect(pages.flatMap((p) => p.sessions.map((s) => s.name))).toEqual(HITS);
    expect(pages).toHaveLength(4);
  });

  it('refuses a v2 listing whose search cannot reach the end within the budget, rather than answer part of it', async () => {
    // Arrange
    const ports = { ...(await sparseFleet(5)), clock: steppingClock(4_000) };
    // Act
    const refused = await listSessionsV2(ports, q({ name_contains: 'hit' })).catch((error: Error) => error);
    const whole = await listSessionsV2({ ...ports, clock: fakeCfsPorts(NOW).clock }, q({ name_contains: 'hit' }));
    // Assert
    expect(refused).toMatchObject({ name: 'ValidationError' });
    expect((refused as Error).message).toMatch(/^The search for matching sessions stopped early: it read for 10 s/);
    expect(whole.map((s) => s.name)).toEqual(HITS);
  });

  it('refuses search_stopped_early with any value but true', async () => {
    // Act / Assert
    expect(() => parseQueryParams(v3SessionListParamsSchema, q({ search_stopped_early: 'false' }))).toThrow('search_stopped_early: query parameter is only ever true');
  });
});

/** Configurations c-00..c-09; c-01 run by a pending session, c-03 by a running one, c-05 by a completed one, c-07 named by an automation. */
async function configurationsInUseFleet() {
  const ports = { ...fakeCfsPorts(NOW), automations: new MemoryAutomations() };
  for (let i = 0; i < 10; i++) await ports.configurations.put(storedConfiguration(`c-${String(i).padStart(2, '0')}`));
  const users: Array<[string, SessionStatus]> = [
    ['c-01', 'pending'],
    ['c-03', 'running'],
    ['c-05', 'complete'],
  ];
  for (const [configuration, status] of users) {
    await ports.sessions.create({ ...listedSession(`run-${configuration}`, { status }), configuration: { name: configuration, limit: '' } });
  }
  await ports.automations.create(automationRecord('nightly', { configuration_name: 'c-07' }));
  return ports;
}

describe('in_use on configuration listings', () => {
  it('lists as in use the configurations a pending or running session or an automation names, not one only a completed session named', async () => {
    // Arrange
    const ports = await configurationsInUseFleet();
    // Act
    const used = await listConfigurationPage(ports, q({ in_use: 'true' }));
    const unused = await listConfigurationPage(ports, q({ in_use: 'False' }));
    const v2 = await listConfigurationsV2(ports, q({ in_use: 'TRUE' }));
    // Assert
    expect(used.configurations.map((c) => c.name)).toEqual(['c-01', 'c-03', 'c-07']);
    expect(used.next).toBeNull();
    expect(unused.configurations.map((c) => c.name)).toEqual(['c-00', 'c-02', 'c-04', 'c-05', 'c-06', 'c-08', 'c-09']);
    expect(v2.map((c) => c.name)).toEqual(['c-01', 'c-03', 'c-07']);
  });

  it('pages both ways with limit and after_id, next carrying in_use', async () => {
    // Arrange
    const ports = await configurationsInUseFleet();
    // Act
    const used = await listConfigurationPage(ports, q({ in_use: 'true', limit: '2' }));
    const usedRest = await listConfigurationPage(ports, asQuery(used.next!));
    const unused = await listConfigurationPage(ports, q({ in_use: 'false', limit: '3', after_id: 'c-02' }));
    const unusedLast = await listConfigurationPage(ports, q({ in_use: 'false', limit: '2', after_id: 'c-06' }));
    // Assert
    expect(used.configurations.map((c) => c.name)).toEqual(['c-01', 'c-03']);
    expect(used.next).toEqual({ in_use: 'true', limit: 2, after_id: 'c-03' });
    expect(usedRest.configurations.map((c) => c.name)).toEqual(['c-07']);
    expect(usedRest.next).toBeNull();
    expect(unused.configurations.map((c) => c.name)).toEqual(['c-04', 'c-05', 'c-06']);
    expect(unused.next).toEqual({ in_use: 'false', limit: 3, after_id: 'c-06' });
    expect(unusedLast.configurations.map((c) => c.name)).toEqual(['c-08', 'c-09']);
    expect(unusedLast.next).toBeNull();
  });

  it('reads the sessions in use through the status filter, never every session', async () => {
    // Arrange
    const ports = await configurationsInUseFleet();
    ports.sessions.list = async () => {
      throw new Error('reads every session: find the active ones with query');
    };
    const asked: SessionPageRequest[] = [];
    const query = ports.sessions.query.bind(ports.sessions);
    ports.sessions.query = (request) => (asked.push(request), query(request));
    // Act
    const used = await listConfigurationPage(ports, q({ in_use: 'true' }));
    // Assert
    expect(used.configurations).toHaveLength(3);
    expect(asked.map((r) => r.filter)).toEqual([{ status: 'pending' }, { status: 'running' }]);
  });

  it.each(['yes', '1', ''])('refuses in_use=%j with a 400 naming the parameter', async (value) => {
    // Arrange
    const ports = await configurationsInUseFleet();
    // Act
    const refused = await listConfigurationPage(ports, q({ in_use: value })).catch((error: Error) => error);
    // Assert
    expect(refused).toMatchObject({ name: 'ValidationError', field: 'in_use' });
    expect((refused as Error).message).toBe('in_use: query parameter must be true or false');
  });

  it('refuses to delete a configuration an automation names, as one a pending session runs, and deletes one only a completed session ran', async () => {
    // Arrange
    const ports = await configurationsInUseFleet();
    // Act
    const byAutomation = await deleteConfiguration(ports, 'c-07').catch((error: Error) => error);
    const bySession = await deleteConfiguration(ports, 'c-01').catch((error: Error) => error);
    await deleteConfiguration(ports, 'c-05');
    // Assert
    expect(byAutomation).toMatchObject({ name: 'InvalidStateError', message: "configuration 'c-07' is used by automation 'nightly'; change or delete the automations first" });
    expect(bySession).toMatchObject({ name: 'InvalidStateError', message: "configuration 'c-01' is used by session 'run-c-01' (pending); wait for or delete the sessions first" });
    expect(await ports.configurations.get('c-05')).toBeUndefined();
    expect(await ports.configurations.get('c-07')).toBeDefined();
  });
});
