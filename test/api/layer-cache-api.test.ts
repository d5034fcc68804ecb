import { describe, expect, it } from 'vitest';
import { createApp } from '../../functions/api/app.ts';
import { checkAutomation, sessionRequestFor } from '../../functions/core/automations/automation-rules.ts';
import { layerCacheKeys } from '../../functions/core/layer-cache/entry.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { IMG1 } from '../helpers/cfs-fakes.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';
import { call, cfsTestAppForSuite } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

const IMG2 = '22222222-2222-4222-8222-222222222222';
const target = { definition: 'image', groups: [{ name: 'Compute', members: [IMG1] }] };
const KEY = (c: string) => c.repeat(64);

/** A completed session of three layers on one image, as the runner and RecordArtifacts leave it. */
function completedSession(name: string, extra: Partial<SessionRecord['status']> = {}, groups: Record<string, string[]> = { Compute: [IMG1] }): SessionRecord {
  const base = pendingSession(name, groups);
  return {
    ...base,
    status: {
      ...base.status,
      session: { ...base.status.session, status: 'complete', succeeded: 'true', completion_time: '2026-11-26T10:05:00Z' },
      layers: ['base', 'site', 'last'].map((l, i) => ({ name: l, clone_url: 'https://git.example/r.git', commit: String(i).repeat(40), playbook: 'site.yml' })),
      ...extra,
    },
  };
}

const report = (key: string, index: number) => ({
  key,
  image_id: IMG1,
  layer_index: index,
  files: [
    { path: '/etc/motd', change: 'modified', type: 'file' },
    { path: '/usr/bin/hello', change: 'added', type: 'file' },
  ],
  files_truncated: false,
  packages: { manager: 'dpkg', changes: [{ name: 'hello', old: null, new: '2.10-3' }] },
});

describe('a session create with layer_cache (issue 19)', () => {
  const t = cfsTestAppForSuite({ configuration: 'c' });

  it('keeps layer_cache: false from a v3 body and shows it under status in v3 and v2, valid against the CFS spec', async () => {
    // Act
    const created = await call(t.app, 'POST', '/apis/cfs/v3/sessions', { name: 'full', configuration_name: 'c', target, layer_cache: false });
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/sessions/full');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions/full');
    // Assert
    expect(created.status).toBe(201);
    expect((await t.ports.sessions.get('full'))!.layer_cache).toBe(false);
    expect(v3.body.status.layer_cache).toBe(false);
    expect(v2.body.status.layer_cache).toBe(false);
    expect(v3.body).not.toHaveProperty('layer_cache');
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, v3.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/sessions/{session_name}', 200, v2.body)).toBeUndefined();
  });

  it('takes layer_cache from a v2 body spelled the same, and stores nothing for true or absent (reuse allowed)', async () => {
    // Act
    const v2 = await call(t.app, 'POST', '/apis/cfs/v2/sessions', { name: 'full-v2', configurationName: 'c', target, layer_cache: false });
    const on = await call(t.app, 'POST', '/apis/cfs/v3/sessions', { name: 'on', configuration_name: 'c', target, layer_cache: true });
    const absent = await call(t.app, 'POST', '/apis/cfs/v3/sessions', { name: 'absent', configuration_name: 'c', target });
    // Assert
    expect(v2.status).toBe(200);
    expect((await t.ports.sessions.get('full-v2'))!.layer_cache).toBe(false);
    expect(on.body.status).not.toHaveProperty('layer_cache');
    expect(absent.body.status).not.toHaveProperty('layer_cache');
    expect(await t.ports.sessions.get('on')).not.toHaveProperty('layer_cache');
  });

  it('refuses a layer_cache that is not a boolean with a 400 naming the field', async () => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v3/sessions', { name: 'bad', configuration_name: 'c', target, layer_cache: 'no' });
    // Assert
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain('layer_cache: must be true or false');
    expect(await t.ports.sessions.get('bad')).toBeUndefined();
  });

  it("passes an automation's layer_cache: false to every session it starts, and nothing when it has none", () => {
    // Arrange
    const configuration = { name: 'c', last_updated: 't', layers: [{ name: 'base', clone_url: 'https://git.example/b.git', playbook: 'site.yml', commit: 'a'.repeat(40) }] };
    const body = { configuration_name: 'c', source: { name_pattern: 'base-*' }, groups: ['Compute'], on_image_registered: true };
    // Act
    const full = checkAutomation('nightly', { ...body, layer_cache: false }, configuration);
    const usual = checkAutomation('nightly', body, configuration);
    const refused = () => checkAutomation('nightly', { ...body, layer_cache: 'off' }, configuration);
    // Assert
    expect(full.layer_cache).toBe(false);
    expect(sessionRequestFor(full, 'nightly-1', IMG1, 'r', {})).toMatchObject({ layer_cache: false });
    expect(sessionRequestFor(usual, 'nightly-1', IMG1, 'r', {})).not.toHaveProperty('layer_cache');
    expect(refused).toThrow('layer_cache: must be true or false');
  });
});

describe('GET /apis/cfs/v3/sessions/{name}/layers/{index}/changes (issue 19)', () => {
  const t = cfsTestAppForSuite();
  const changes = (name: string, index: string | number, query = '') => call(t.app, 'GET', `/apis/cfs/v3/sessions/${name}/layers/${index}/changes${query}`);

  it("answers the layer's report from the store, found by the session's layer key, with or without the image named", async () => {
    // Arrange
    await t.ports.sessions.create(completedSession('built', { layer_keys: { [IMG1]: [KEY('a'), KEY('b'), KEY('c')] } }));
    await t.ports.artifacts.put(layerCacheKeys.changes(KEY('b')), JSON.stringify(report(KEY('b'), 1)));
    // Act
    const implicit = await changes('built', 1);
    const named = await changes('built', 1, `?image_id=${IMG1}`);
    // Assert
    expect(implicit.status).toBe(200);
    expect(implicit.body).toEqual(report(KEY('b'), 1));
    expect(named.body).toEqual(implicit.body);
  });

  it.each([
    ['an unknown session', 'nobody', '0', '', "session 'nobody' does not exist"],
    ['a layer index past the last', 'built', '3', '', "session 'built' has no layer 3: its layers are 0 to 2"],
    ['an image not in the session', 'built', '0', `?image_id=${IMG2}`, `image ${IMG2} is not one of session 'built''s images`],
    ['a layer whose report is not in the store', 'built', '2', '', 'no changes report is kept for layer 2'],
  ])('answers %s with a 404 problem saying so', async (_what, name, index, query, detail) => {
    // Act
    const res = await changes(name, index, query);
    // Assert
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.detail).toContain(detail);
  });

  it('answers a failed layer, a session that ran with the cache off and one still running with a 404 that says why', async () => {
    // Arrange
    await t.ports.sessions.create(
      completedSession('failed', {
        session: { status: 'complete', succeeded: 'false', start_time: '2026-11-26T10:00:00Z' },
        failure: { step: 'ansible', reason: 'layer site failed', layer: 'site' },
        steps: [
          { name: 'ansible', layer: 'base', state: 'succeeded' },
          { name: 'ansible', layer: 'site', state: 'failed' },
        ],
        // The runner names a key for the failed layer too; no report was recorded under it.
        layer_keys: { [IMG1]: [KEY('d'), KEY('e')] },
      }),
    );
    await t.ports.sessions.create(completedSession('uncached'));
    await t.ports.sessions.create({ ...completedSession('running'), status: { ...completedSession('running').status, session: { status: 'running', succeeded: 'none', start_time: 't' } } });
    // Act
    const failed = await changes('failed', 1);
    const afterFailure = await changes('failed', 2);
    const uncached = await changes('uncached', 0);
    const running = await changes('running', 0);
    // Assert
    expect([failed.status, afterFailure.status, uncached.status, running.status]).toEqual([404, 404, 404, 404]);
    expect(failed.body.detail).toContain("layer 1 (site) of session 'failed' on image");
    expect(failed.body.detail).toContain('failed: a failed layer records no changes');
    expect(afterFailure.body.detail).toContain('recorded no changes: the run stopped before it (layer site failed)');
    expect(uncached.body.detail).toContain('the layer cache was off when it ran (setting layer_cache)');
    expect(running.body.detail).toContain('has no changes recorded yet: the session is running');
  });

  it('asks which image with a 400 when the session has several and none is named, and refuses an index that is not a number', async () => {
    // Arrange
    await t.ports.sessions.create(completedSession('two', {}, { Compute: [IMG1, IMG2] }));
    // Act
    const unnamed = await changes('two', 0);
    const word = await changes('two', 'first');
    const unknownQuery = await changes('two', 0, '?image=x');
    // Assert
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.detail).toContain(`session 'two' has 2 images (${IMG1}, ${IMG2}); name one with ?image_id=`);
    expect(word.status).toBe(400);
    expect(unknownQuery.status).toBe(400);
  });

  it('answers 401 without the token, as every session route', async () => {
    // Arrange
    const guarded = createApp(t.ports, { apiToken: 'secret-token' });
    // Act
    const res = await call(guarded, 'GET', '/apis/cfs/v3/sessions/built/layers/0/changes');
    const withToken = await call(guarded, 'GET', '/apis/cfs/v3/sessions/built/layers/1/changes', undefined, { authorization: 'Bearer secret-token' });
    // Assert
    expect(res.status).toBe(401);
    expect(withToken.status).toBe(200);
  });

  it('is in the served OpenAPI document with its query and the LayerChanges schema', async () => {
    // Act
    const document = (await call(t.app, 'GET', '/apis/cfs/openapi.json')).body;
    // Assert
    const operation = document.paths['/apis/cfs/v3/sessions/{session_name}/layers/{layer_index}/changes'].get;
    expect(operation.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`)).toEqual(['path:session_name', 'path:layer_index', 'query:image_id']);
    expect(operation.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/LayerChanges' });
    expect(Object.keys(document.components.schemas.LayerChanges.properties).sort()).toEqual(['files', 'files_truncated', 'image_id', 'key', 'layer_index', 'packages']);
  });
});
