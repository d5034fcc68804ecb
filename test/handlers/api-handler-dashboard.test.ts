import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../functions/adapters/local/package-root.ts';
import { apiHandler } from '../../functions/handlers/api.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { fakeCfsPorts, storedConfiguration } from '../helpers/cfs-fakes.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { ensureLambdaBundles, lambdaBundlePath } from '../infra/lambda-bundles.ts';

/**
 * The API Lambda behind the dashboard's API Gateway resources: what arrives without a signature
 * reaches only what its resource is for (the static files, or the read-only mirror behind the
 * token authorizer), and the deployed bundle carries the dashboard's files.
 */

/** An API Gateway REST (proxy integration) event of stage v1, through `resource`. */
function restEvent(resource: string, method: string, path: string, body?: unknown, browserPath = `/v1${path}`) {
  const headers: Record<string, string> = { Accept: '*/*', Host: 'a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com', Authorization: 'Bearer dashboard-token' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return {
    resource,
    path,
    httpMethod: method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: { accountId: '123456789012', apiId: 'a1b2c3d4e5', stage: 'v1', path: browserPath, httpMethod: method, resourcePath: resource, requestId: 'request-1', identity: { sourceIp: '192.0.2.1' } },
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
  } as never;
}

const header = (response: { headers?: Record<string, unknown>; multiValueHeaders?: Record<string, unknown[]> }, name: string) => String(response.multiValueHeaders?.[name]?.[0] ?? response.headers?.[name]);

describe('the API Lambda on the dashboard resources', () => {
  let steps: FakeStepPorts;
  let cfs: ReturnType<typeof fakeCfsPorts>;
  let builds: number;
  let handler: ReturnType<typeof apiHandler>;

  beforeEach(async () => {
    steps = fakeStepPorts();
    cfs = fakeCfsPorts();
    await cfs.configurations.put(storedConfiguration());
    builds = 0;
    const ports = () => {
      builds++;
      return { ...cfs, images: steps.images, artifacts: steps.artifacts, events: steps.events } as AppPorts;
    };
    handler = apiHandler(ports, join(packageRoot(), 'dashboard'));
  });
  afterEach(() => steps.dispose());

  it('serves the page and its files on the unsigned GETs without building the API', async () => {
    // Act
    const page = await handler(restEvent('/', 'GET', '/'));
    const script = await handler(restEvent('/dashboard/{file}', 'GET', '/dashboard/app.js'));
    // Assert
    expect([page.statusCode, script.statusCode]).toEqual([200, 200]);
    expect(page.body).toContain('<main id="main"');
    expect(header(script, 'content-type')).toContain('text/javascript');
    expect(builds).toBe(0);
  });

  it('sends the stage URL without its trailing slash to the page at the slash, so its relative links stay in the stage', async () => {
    // Arrange: https://.../v1 reaches resource / as well as https://.../v1/ does.
    const withQuery = { ...(restEvent('/', 'GET', '/', undefined, '/v1') as object), multiValueQueryStringParameters: { poll: ['500'], tag: ['a b', 'c'] } } as never;
    // Act
    const bare = await handler(restEvent('/', 'GET', '/', undefined, '/v1'));
    const queried = await handler(withQuery);
    const otherSite = await handler(restEvent('/', 'GET', '/', undefined, '//evil.example'));
    // Assert
    expect(bare.statusCode).toBe(301);
    expect(header(bare, 'location')).toBe('/v1/');
    expect(header(queried, 'location')).toBe('/v1/?poll=500&tag=a+b&tag=c');
    expect(otherSite.statusCode).toBe(200);
    expect(builds).toBe(0);
  });

  it('reaches no data through the unsigned file resource, whatever its path resolves to', async () => {
    // Act: paths API Gateway could hand over for GET /dashboard/{file} with an encoded climb.
    const climbed = await handler(restEvent('/dashboard/{file}', 'GET', '/dashboard/../apis/cfs/v3/configurations'));
    const mirror = await handler(restEvent('/dashboard/{file}', 'GET', '/dashboard/apis/cfs/v3/configurations'));
    // Assert
    for (const response of [climbed, mirror]) {
      expect(response.statusCode).toBe(404);
      expect(header(response, 'content-type')).toBe('application/problem+json');
    }
    expect(builds).toBe(0);
  });

  it('answers the authorized mirror from the API, read-only', async () => {
    // Act
    const listed = await handler(restEvent('/dashboard/apis/{proxy+}', 'GET', '/dashboard/apis/cfs/v3/configurations'));
    const posted = await handler(restEvent('/dashboard/apis/{proxy+}', 'POST', '/dashboard/apis/cfs/v3/sessions', { name: 'x', configuration_name: 'configurations-example' }));
    const escaped = await handler(restEvent('/dashboard/apis/{proxy+}', 'GET', '/dashboard/apis/../../apis/cfs/v3/configurations'));
    // Assert
    expect(listed.statusCode).toBe(200);
    expect(JSON.parse(listed.body).configurations.map((c: { name: string }) => c.name)).toEqual(['configurations-example']);
    expect(posted.statusCode).toBe(405);
    expect(escaped.statusCode).toBe(404);
    expect(cfs.workflow.started).toEqual([]);
  });

  it('ships the dashboard in the built API bundle, which serves the page and a script', async () => {
    // Arrange
    ensureLambdaBundles();
    const { handler: bundled } = (await import(pathToFileURL(lambdaBundlePath('api')).href)) as { handler: typeof handler };
    // Act
    const page = await bundled(restEvent('/', 'GET', '/'));
    const script = await bundled(restEvent('/dashboard/{file}', 'GET', '/dashboard/lineage.js'));
    // Assert
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<script type="module" src="dashboard/app.js">');
    expect(script.statusCode).toBe(200);
    expect(script.body).toContain('export function lineageTree');
  });
});
