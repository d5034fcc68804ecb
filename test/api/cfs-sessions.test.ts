import { describe, expect, it } from 'vitest';
import { COMMIT_A, IMG1, IMG2 } from '../helpers/cfs-fakes.ts';
import { call, cfsTestAppForSuite } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

const docsExample = (name = 'example') => ({
  name,
  configuration_name: 'configurations-example',
  target: {
    definition: 'image',
    groups: [
      { name: 'Application', members: [IMG1] },
      { name: 'Application_UAN', members: [IMG1] },
    ],
    image_map: [{ source_id: IMG1, result_name: 'my-result' }],
  },
});

describe('CFS sessions API', () => {
  const t = cfsTestAppForSuite({ configuration: 'configurations-example' });

  it('creates the CFS docs example with v3 as 201, pending, valid against the spec', async () => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v3/sessions', docsExample());
    // Assert
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.body).toMatchObject({
      name: 'example',
      target: docsExample().target,
      status: { session: { status: 'pending', succeeded: 'none', job: 'execution-example' }, artifacts: [] },
      debug_on_failure: false,
    });
    expect(res.body.status.session.start_time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(await cfsResponseErrors('post', '/v3/sessions', 201, res.body)).toBeUndefined();
  });

  it('uses a validator that does catch a body outside the spec', async () => {
    // Arrange
    const v3 = (await call(t.app, 'GET', '/apis/cfs/v3/sessions/example')).body;
    // Act
    const extraTopLevel = await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, { ...v3, layers: [] });
    const v3InV2 = await cfsResponseErrors('get', '/v2/sessions/{session_name}', 200, v3);
    // Assert
    expect(extraTopLevel).toBeDefined();
    expect(v3InV2).toBeDefined();
  });

  it('describes the session with v3 and v2, each valid against its schema', async () => {
    // Act
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/sessions/example');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions/example');
    // Assert
    expect(v3.status).toBe(200);
    expect(v3.body.status.layers).toEqual([{ name: 'base', clone_url: 'https://git.example/base.git', commit: COMMIT_A, playbook: 'site.yml' }]);
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, v3.body)).toBeUndefined();
    expect(v2.status).toBe(200);
    expect(v2.body.status.session).toMatchObject({ status: 'pending', succeeded: 'none', completionTime: null, startTime: v3.body.status.session.start_time });
    expect(v2.body).not.toHaveProperty('debug_on_failure');
    expect(await cfsResponseErrors('get', '/v2/sessions/{session_name}', 200, v2.body)).toBeUndefined();
  });

  it('shows a complete session with artifacts and a completion time, valid in both versions', async () => {
    // Arrange
    await call(t.app, 'POST', '/apis/cfs/v3/sessions', docsExample('finished'));
    await t.ports.sessions.update('finished', (s) => ({
      ...s,
      status: {
        ...s.status,
        session: { ...s.status.session, status: 'complete', succeeded: 'true', completion_time: '2026-11-26T11:00:00Z' },
        artifacts: [{ image_id: IMG1, result_id: IMG2, type: 'ims_customized_image' }],
        steps: [{ name: 'RunAnsible', state: 'succeeded', start_time: '2026-11-26T10:00:00Z', end_time: '2026-11-26T11:00:00Z' }],
      },
    }));
    // Act
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/sessions/finished');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions/finished');
    // Assert
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 200, v3.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/sessions/{session_name}', 200, v2.body)).toBeUndefined();
    expect(v2.body.status.session.completionTime).toBe('2026-11-26T11:00:00Z');
    expect(v2.body.status.artifacts).toHaveLength(1);
  });

  it('lists sessions as {sessions, next} in v3 and a bare array in v2', async () => {
    // Act
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/sessions');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/sessions');
    // Assert
    expect(v3.body.next).toBeNull();
    expect(v3.body.sessions.map((s: { name: string }) => s.name)).toContain('example');
    expect(await cfsResponseErrors('get', '/v3/sessions', 200, v3.body)).toBeUndefined();
    expect(Array.isArray(v2.body)).toBe(true);
    expect(await cfsResponseErrors('get', '/v2/sessions', 200, v2.body)).toBeUndefined();
  });

  it('answers a second create of the same name with 409 problem+json', async () => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v3/sessions', docsExample());
    // Assert
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toMatchObject({ title: 'Conflict', status: 409, detail: "session 'example' already exists" });
    expect(await cfsResponseErrors('post', '/v3/sessions', 409, res.body)).toBeUndefined();
  });

  it('lets exactly one of two racing creates of the same name win', async () => {
    // Act
    const [a, b] = await Promise.all([
      call(t.app, 'POST', '/apis/cfs/v3/sessions', docsExample('race')),
      call(t.app, 'POST', '/apis/cfs/v2/sessions', { name: 'race', configurationName: 'configurations-example', target: docsExample().target }),
    ]);
    // Assert
    const statuses = [a.status, b.status];
    expect(statuses.filter((s) => s === 409)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200 || s === 201)).toHaveLength(1);
    expect(t.workflow.started.filter((n) => n === 'race')).toHaveLength(1);
  });

  it.each([
    ['a bad name', { name: 'Example_1' }, 'name'],
    ['a non-UUID member', { target: { definition: 'image', groups: [{ name: 'Compute', members: ['x3000c0s1b0n0'] }] } }, 'target.groups[0].members[0]'],
    ['a reserved group name', { target: { definition: 'image', groups: [{ name: 'cfs_image', members: [IMG1] }] } }, 'target.groups[0].name'],
    ['an image definition without groups', { target: { definition: 'image' } }, 'target.groups'],
    ['a missing configuration', { configuration_name: 'nope' }, 'configuration_name'],
    ['a spec target', { target: { definition: 'spec', groups: [{ name: 'g', members: ['x1'] }] } }, 'target.definition'],
    ['an unknown field', { ansible_forks: 5 }, 'ansible_forks'],
    ['a missing name', { name: undefined }, 'name'],
  ])('refuses %s with a 400 naming the field', async (_what, change, field) => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v3/sessions', { ...docsExample('bad-one'), ...change });
    // Assert
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.title).toBe('Bad Request');
    expect(res.body.detail.startsWith(`${field}: `)).toBe(true);
    expect(res.body.field).toBe(field);
    expect(await cfsResponseErrors('post', '/v3/sessions', 400, res.body)).toBeUndefined();
  });

  it('names v2 fields in v2 errors', async () => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v2/sessions', { name: 'v2-bad', configurationName: 'nope', target: docsExample().target });
    const verbosity = await call(t.app, 'POST', '/apis/cfs/v2/sessions', { name: 'v2-bad', configurationName: 'c', ansibleVerbosity: 9 });
    // Assert
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe("configurationName: configuration 'nope' does not exist");
    expect(verbosity.body.field).toBe('ansibleVerbosity');
  });

  it('deletes a session with 204, stopping its workflow, then answers 404', async () => {
    // Arrange
    await call(t.app, 'POST', '/apis/cfs/v3/sessions', docsExample('to-delete'));
    // Act
    const deleted = await call(t.app, 'DELETE', '/apis/cfs/v3/sessions/to-delete');
    const again = await call(t.app, 'DELETE', '/apis/cfs/v2/sessions/to-delete');
    const get = await call(t.app, 'GET', '/apis/cfs/v3/sessions/to-delete');
    // Assert
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect(t.workflow.stopped).toContainEqual({ name: 'to-delete', job: 'execution-to-delete' });
    expect(again.status).toBe(404);
    expect(get.status).toBe(404);
    expect(get.body).toMatchObject({ title: 'Not Found', detail: "session 'to-delete' does not exist" });
    expect(await cfsResponseErrors('get', '/v3/sessions/{session_name}', 404, get.body)).toBeUndefined();
  });
});

describe('HTTP errors of the CFS API are problem+json', () => {
  const t = cfsTestAppForSuite();

  it('answers an unknown route with 404', async () => {
    // Act
    const res = await call(t.app, 'GET', '/apis/cfs/v9/sessions');
    // Assert
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.detail).toBe('no route for GET /apis/cfs/v9/sessions');
  });

  it('answers a wrong method with 405 and an Allow header', async () => {
    // Act
    const put = await call(t.app, 'PUT', '/apis/cfs/v3/sessions');
    const patch = await call(t.app, 'PATCH', '/apis/cfs/v2/sessions/x');
    // Assert
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST, DELETE, HEAD');
    expect(put.body).toMatchObject({ title: 'Method Not Allowed', status: 405 });
    expect(put.body.detail).toContain('PUT is not allowed on /apis/cfs/v3/sessions');
    expect(patch.status).toBe(405);
    expect(patch.headers.get('allow')).toBe('GET, DELETE, HEAD');
  });

  it.each([
    ['an empty body', '', 400, 'request body is empty'],
    ['malformed JSON', '{"name": ', 400, 'request body is not valid JSON'],
    ['an array body', '[1,2]', 400, 'must be a JSON object, not an array'],
    ['a string body', '"x"', 400, 'must be a JSON object, not a string'],
    ['a null body', 'null', 400, 'must be a JSON object, not null'],
  ])('answers %s with %i naming the body', async (_what, body, status, detail) => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v3/sessions', body);
    // Assert
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body.detail).toContain(detail);
    expect(res.body.field).toBe('body');
  });

  it('answers a body over 1 MiB with 413, also when sent without a length', async () => {
    // Arrange
    const big = JSON.stringify({ name: 'x', tags: { a: 'y'.repeat(1024 * 1024) } });
    const chunked = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    // Act
    const withLength = await call(t.app, 'POST', '/apis/cfs/v3/sessions', big);
    const response = await t.app.request('/apis/cfs/v3/sessions', { method: 'POST', body: chunked, duplex: 'half' } as RequestInit);
    // Assert
    expect(withLength.status).toBe(413);
    expect(withLength.body).toMatchObject({ title: 'Payload Too Large', field: 'body' });
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
  });

  it('refuses a query parameter the list does not take instead of ignoring it', async () => {
    // Act
    const res = await call(t.app, 'GET', '/apis/cfs/v3/sessions?state=pending');
    // Assert
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain('state: query parameter is not supported here');
  });
});
