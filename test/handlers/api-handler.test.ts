import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apiHandler } from '../../functions/handlers/api.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { fakeCfsPorts, IMG1, storedConfiguration } from '../helpers/cfs-fakes.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';

/** An API Gateway REST (proxy integration) event, as the `{proxy+}` resource of stage v1 delivers it. */
function restEvent(method: string, path: string, options: { body?: unknown; query?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { Accept: 'application/json', Host: 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: options.query ?? null,
    multiValueQueryStringParameters: options.query ? Object.fromEntries(Object.entries(options.query).map(([k, v]) => [k, [v]])) : null,
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    requestContext: {
      accountId: '123456789012',
      apiId: 'a1b2c3d4e5',
      stage: 'v1',
      path: `/v1${path}`,
      httpMethod: method,
      resourcePath: '/{proxy+}',
      requestId: 'request-1',
      identity: { sourceIp: '192.0.2.1', userArn: 'arn:aws:iam::123456789012:user/operator' },
    },
    body: options.body === undefined ? null : JSON.stringify(options.body),
    isBase64Encoded: false,
  };
}

describe('the API Lambda handler (the same app behind API Gateway)', () => {
  let steps: FakeStepPorts;
  let cfs: ReturnType<typeof fakeCfsPorts>;
  let builds: number;
  let handler: ReturnType<typeof apiHandler>;

  beforeEach(() => {
    steps = fakeStepPorts();
    cfs = fakeCfsPorts();
    builds = 0;
    handler = apiHandler(() => {
      builds++;
      return { ...cfs, images: steps.images, artifacts: steps.artifacts, events: steps.events } as AppPorts;
    });
  });
  afterEach(() => steps.dispose());

  it('creates a session from a proxied POST and starts its workflow', async () => {
    // Arrange
    await cfs.configurations.put(storedConfiguration());
    const body = { name: 'example', configuration_name: 'configurations-example', target: { definition: 'image', groups: [{ name: 'Compute', members: [IMG1] }] } };
    // Act
    const response = await handler(restEvent('POST', '/apis/cfs/v3/sessions', { body }) as never);
    // Assert
    expect(response.statusCode).toBe(201);
    expect(JSON.parse(response.body)).toMatchObject({ name: 'example', status: { session: { status: 'pending' } } });
    expect(cfs.workflow.started).toEqual(['example']);
  });

  it('answers a query-string listing and builds the ports once for every invocation of the instance', async () => {
    // Act
    const first = await handler(restEvent('GET', '/apis/cfs/v3/sessions', { query: { status: 'pending' } }) as never);
    const second = await handler(restEvent('GET', '/apis/cfs/v3/configurations') as never);
    // Assert
    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
    expect(JSON.parse(first.body)).toMatchObject({ sessions: [] });
    expect(builds).toBe(1);
  });

  it('answers an unknown path with problem+json', async () => {
    // Act
    const response = await handler(restEvent('GET', '/apis/cfs/v9/nothing') as never);
    // Assert
    expect(response.statusCode).toBe(404);
    // A REST (v1) event with multi-value headers gets its headers back the same way.
    const contentType = response.multiValueHeaders?.['content-type']?.[0] ?? response.headers?.['content-type'];
    expect(String(contentType)).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(response.body)).toMatchObject({ status: 404, detail: expect.stringContaining('/apis/cfs/v9/nothing') });
  });
});
