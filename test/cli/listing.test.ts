import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbSessionStore } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { createApp } from '../../functions/api/app.ts';
import { rfc3339 } from '../../functions/core/sessions/rfc3339.ts';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { startCfsTestApp, type CfsTestApp } from '../api/cfs-app.ts';
import type { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { storedConfiguration } from '../helpers/cfs-fakes.ts';
import { listedSession, seedSessions } from '../helpers/listing-seed.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';

const ago = (hours: number) => rfc3339(new Date(Date.now() - hours * 3_600_000));

describe('cfs sessions list and deleteall, cfs configurations list', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  let workflow: FakeWorkflow;
  beforeAll(async () => {
    data = tempDataDir();
    ({ runtime, workflow } = await startServer(data.dir));
    const sessions = [
      listedSession('nightly-1', { status: 'complete', start: ago(30), tags: { automation: 'nightly' } }),
      listedSession('nightly-2', { status: 'complete', succeeded: 'false', start: ago(26), tags: { automation: 'nightly' } }),
      listedSession('nightly-3', { status: 'complete', start: ago(2), tags: { automation: 'nightly' } }),
      listedSession('nightly-4', { status: 'running', start: ago(1), tags: { automation: 'nightly' } }),
      listedSession('manual-1', { status: 'complete', start: ago(50) }),
      listedSession('manual-2', { status: 'pending', start: ago(0) }),
    ];
    for (const s of sessions) await runtime.ports.sessions.create({ ...s, status: { ...s.status, session: { ...s.status.session, job: `execution-${s.name}` } } });
    for (const name of ['conf-a', 'conf-b']) await runtime.ports.configurations.put(storedConfiguration(name));
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
  });

  it('sends every filter as the query parameter cray sends, and prints the API JSON', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'list', '--tags', 'automation=nightly', '--status', 'complete', '--succeeded', 'True', '--min-age', '1d', '--format', 'json');
    // Assert
    expect(res.code).toBe(0);
    const body = JSON.parse(res.out);
    expect(body.sessions.map((s: { name: string }) => s.name)).toEqual(['nightly-1']);
    expect(body.next).toBeNull();
  });

  it('prints one page as a table with the flag that gets the next page, and continues from it', async () => {
    // Act
    const first = await cfs(runtime, 'sessions', 'list', '--name-contains', 'nightly', '--limit', '2');
    const second = await cfs(runtime, 'sessions', 'list', '--name-contains', 'nightly', '--limit', '2', '--after-id', 'nightly-2', '--format', 'json');
    // Assert
    expect(first.out).toMatch(/^NAME\s+STATUS/);
    expect(first.out).toMatch(/nightly-1\s+complete\s+true/);
    expect(first.out).toContain('More sessions match: add --after-id nightly-2 for the next page. Run with --all for every page.');
    expect(JSON.parse(second.out).sessions.map((s: { name: string }) => s.name)).toEqual(['nightly-3', 'nightly-4']);
  });

  it('follows next to the last page with --all, in the table and in JSON', async () => {
    // Act
    const table = await cfs(runtime, 'sessions', 'list', '--name-contains', 'nightly', '--limit', '1', '--all');
    const json = await cfs(runtime, 'sessions', 'list', '--name-contains', 'nightly', '--limit', '3', '--all', '--format', 'json');
    // Assert
    expect(table.code).toBe(0);
    expect(table.out.match(/^nightly-\d/gm)).toEqual(['nightly-1', 'nightly-2', 'nightly-3', 'nightly-4']);
    expect(table.out).not.toContain('--after-id');
    expect(JSON.parse(json.out)).toEqual({ sessions: expect.any(Array), next: null });
    expect(JSON.parse(json.out).sessions.map((s: { name: string }) => s.name)).toEqual(['nightly-1', 'nightly-2', 'nightly-3', 'nightly-4']);
  });

  it('speaks v2 with --age and refuses v3 paging flags there before calling the API', async () => {
    // Act
    const v2 = await cfs(runtime, 'sessions', 'list', '--api-version', '2', '--age', '1d', '--max-age', '2d', '--format', 'json');
    const paged = await cfs(runtime, 'sessions', 'list', '--api-version', '2', '--limit', '3');
    const ageOnV3 = await cfs(runtime, 'sessions', 'list', '--age', '1d');
    // Assert
    expect(JSON.parse(v2.out).map((s: { name: string }) => s.name)).toEqual(['nightly-1', 'nightly-2']);
    expect(paged.code).toBe(1);
    expect(paged.err).toBe('Error: --limit is v3 paging; v2 has none (drop --api-version 2)\n');
    expect(ageOnV3.code).toBe(1);
    expect(ageOnV3.err).toBe('Error: --age is v2 only; use --min-age\n');
  });

  it('shows a filter the API refuses as one Error line and exit code 2', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'list', '--max-age', 'soon');
    // Assert
    expect(res.code).toBe(2);
    expect(res.err).toBe('Error: Bad Request: max_age: query parameter must be a number followed by m, h, d or w (e.g. 1h, 2d, 3w)\n');
  });

  it('keeps a refused option value with a newline in it to one escaped error line', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'list', '--format', 'ya\nml');
    // Assert
    expect(res.code).toBe(1);
    expect(res.err).toBe("error: option '--format <format>' argument 'ya\\nml' is invalid. Allowed choices are human, json, yaml.\n");
    expect(res.out).toBe('');
  });

  it('keeps commander\'s "Did you mean" hint on the error\'s line', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'list', '--formt', 'json');
    // Assert
    expect(res.code).toBe(1);
    expect(res.err).toBe("error: unknown option '--formt' (Did you mean --format?)\n");
  });

  it('pages configurations with --limit and --after-id', async () => {
    // Act
    const first = await cfs(runtime, 'configurations', 'list', '--limit', '1');
    const second = await cfs(runtime, 'configurations', 'list', '--limit', '1', '--after-id', 'conf-a', '--format', 'json');
    // Assert
    expect(first.out).toMatch(/conf-a/);
    expect(first.out).toContain('More configurations match: add --after-id conf-a for the next page. Run with --all for every page.');
    expect(JSON.parse(second.out)).toMatchObject({ configurations: [{ name: 'conf-b' }], next: null });
  });

  it('lists configurations by --in-use (sent as in_use, refused before the API when not a boolean) and every page with --all', async () => {
    // Act
    const unused = await cfs(runtime, 'configurations', 'list', '--in-use', 'false', '--format', 'json');
    const used = await cfs(runtime, 'configurations', 'list', '--in-use', 'True');
    const v2 = await cfs(runtime, 'configurations', 'list', '--api-version', '2', '--in-use', 'false', '--format', 'json');
    const all = await cfs(runtime, 'configurations', 'list', '--limit', '1', '--all', '--format', 'json');
    const refused = await cfs(runtime, 'configurations', 'list', '--in-use', 'maybe');
    // Assert
    expect(JSON.parse(unused.out)).toMatchObject({ configurations: [{ name: 'conf-a' }, { name: 'conf-b' }], next: null });
    expect(used.out).toBe('No configurations.\n');
    expect(JSON.parse(v2.out).map((c: { name: string }) => c.name)).toEqual(['conf-a', 'conf-b']);
    expect(JSON.parse(all.out)).toMatchObject({ configurations: [{ name: 'conf-a' }, { name: 'conf-b' }], next: null });
    expect(refused.code).toBe(1);
    expect(refused.err).toBe("Error: --in-use takes true or false, not 'maybe'\n");
  });

  it('deletes every matching complete session with deleteall, printing their names', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'deleteall', '--tags', 'automation=nightly', '--min-age', '1d');
    const left = JSON.parse((await cfs(runtime, 'sessions', 'list', '--format', 'json')).out).sessions.map((s: { name: string }) => s.name);
    // Assert
    expect(res.code).toBe(0);
    expect(res.out).toBe('Deleted 2 sessions: nightly-1, nightly-2\n');
    expect(left).toEqual(['manual-1', 'manual-2', 'nightly-3', 'nightly-4']);
  });

  it('stops a running session it deletes, and answers JSON or the v2 204 as the API does', async () => {
    // Act
    const json = await cfs(runtime, 'sessions', 'deleteall', '--status', 'running', '--format', 'json');
    const v2 = await cfs(runtime, 'sessions', 'deleteall', '--api-version', '2', '--name-contains', 'manual', '--status', 'pending');
    const none = await cfs(runtime, 'sessions', 'deleteall', '--name-contains', 'nobody');
    // Assert
    expect(JSON.parse(json.out)).toEqual({ session_ids: ['nightly-4'] });
    expect(workflow.stopped.map((s) => s.name).sort()).toEqual(['manual-2', 'nightly-4']);
    expect(v2.out).toBe('Deleted the matching sessions.\n');
    expect(none.out).toBe('No session matched; nothing deleted.\n');
    expect(await runtime.ports.sessions.get('manual-2')).toBeUndefined();
  });
});

describe('cfs sessions list when the server stops a search early', () => {
  let dynamo: LocalDynamo;
  let base: CfsTestApp;
  let server: ServerType;
  let url: string;
  beforeAll(async () => {
    // 2,100 sessions, two of them past the 2,000th named -hit; 6 s pass per clock read, so one request reads two store pages (2,000 sessions).
    dynamo = await startLocalDynamo({ tableName: 'cli-listing' });
    await seedSessions(dynamo.documents, 'cli-listing', Array.from({ length: 2_100 }, (_, i) => listedSession(`cli-${String(i).padStart(4, '0')}${i === 2_050 || i === 2_080 ? '-hit' : ''}`)));
    base = await startCfsTestApp();
    let now = Date.now();
    const app = createApp({ ...base.ports, sessions: new DynamoDbSessionStore(dynamo.documents, 'cli-listing'), clock: { now: () => new Date((now += 6_000)) } });
    url = await new Promise<string>((resolve) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(`http://127.0.0.1:${info.port}`));
    });
  }, 120_000);
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await base.close();
    await dynamo.close();
  });

  it('says the search stopped early and how to go on, not that more sessions match, and --all finds every match', async () => {
    // Act
    const page = await cfs(url, 'sessions', 'list', '--name-contains', 'hit', '--limit', '5');
    const all = await cfs(url, 'sessions', 'list', '--name-contains', 'hit', '--limit', '5', '--all', '--format', 'json');
    // Assert
    expect(page.code).toBe(0);
    expect(page.out).toBe(
      'No sessions.\nThe search stopped early (the server\'s time limit per request) before filling the page; more sessions may match: run with --all, or add --after-id cli-1999 to search on.\n',
    );
    expect(JSON.parse(all.out)).toEqual({ sessions: [expect.objectContaining({ name: 'cli-2050-hit' }), expect.objectContaining({ name: 'cli-2080-hit' })], next: null });
  });
});
