import { afterEach, describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { parseServiceVersion } from '../../functions/core/service/service-version.ts';
import { CFS_COMPONENTS_REFUSAL } from '../../functions/api/routes/cfs-service.ts';
import { IMS_REFUSALS, IMS_V2_REFUSAL } from '../../functions/api/routes/ims-service.ts';
import type { WorkflowStarter } from '../../functions/ports/workflow-starter.ts';
import { call, cfsTestAppForSuite, startCfsTestApp } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';
import { imsResponseErrors } from './ims-spec.ts';

const [major, minor, patch] = packageJson.version.split(/[.+-]/);

describe('CFS discovery: Version on /apis/cfs/, /versions, /v2 and /v3', () => {
  const t = cfsTestAppForSuite();

  it.each([
    ['/apis/cfs/', '/'],
    ['/apis/cfs', '/'],
    ['/apis/cfs/versions', '/versions'],
    ['/apis/cfs/v2', '/v2'],
    ['/apis/cfs/v3', '/v3'],
  ])('answers GET %s with the product version, valid against the spec', async (path, specPath) => {
    // Act
    const res = await call(t.app, 'GET', path);
    // Assert
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ major, minor, patch });
    expect(await cfsResponseErrors('get', specPath, 200, res.body)).toBeUndefined();
  });

  it('refuses other methods (405 with Allow) and unknown query parameters (400)', async () => {
    // Act
    const post = await call(t.app, 'POST', '/apis/cfs/v3', {});
    const query = await call(t.app, 'GET', '/apis/cfs/versions?verbose=true');
    // Assert
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(query.status).toBe(400);
    expect(query.body.detail).toContain('verbose: query parameter is not supported here');
  });

  it('reads major, minor and patch out of a release version, and refuses what is not one', () => {
    // Act
    const release = parseServiceVersion('2.14.3-rc.1+build.7');
    const broken = () => parseServiceVersion('2.x');
    // Assert
    expect(release).toEqual({ major: '2', minor: '14', patch: '3' });
    expect(broken).toThrow("package.json version '2.x' is not major.minor.patch");
  });
});

describe('CFS health: /apis/cfs/healthz checks the stores and the workflow engine', () => {
  const t = cfsTestAppForSuite();
  afterEach(() => {
    delete (t.workflow as WorkflowStarter).checkHealth;
  });

  it('answers 200 with both parts ok when the table, the artifact store and the engine answer', async () => {
    // Arrange
    let asked = 0;
    (t.workflow as WorkflowStarter).checkHealth = async () => void asked++;
    // Act
    const res = await call(t.app, 'GET', '/apis/cfs/healthz');
    // Assert
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ db_status: 'ok', kafka_status: 'ok' });
    expect(asked).toBe(1);
    expect(await cfsResponseErrors('get', '/healthz', 200, res.body)).toBeUndefined();
  });

  it('answers 503 naming the engine when the engine fails its check, the reason kept out of the answer', async () => {
    // Arrange
    (t.workflow as WorkflowStarter).checkHealth = async () => {
      throw new Error('secret internal reason');
    };
    // Act
    const res = await call(t.app, 'GET', '/apis/cfs/healthz');
    // Assert
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ db_status: 'ok', kafka_status: 'not_available' });
    expect(res.text).not.toContain('secret');
    expect(await cfsResponseErrors('get', '/healthz', 503, res.body)).toBeUndefined();
  });

  it('reports an engine with nothing to ask as not checked, without failing', async () => {
    // Act
    const res = await call(t.app, 'GET', '/apis/cfs/healthz');
    // Assert
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ db_status: 'ok', kafka_status: 'not_checked' });
  });

  it('answers 503 naming the stores when the table is gone', async () => {
    // Arrange: an app whose dynalite is closed under it.
    const broken = await startCfsTestApp();
    await broken.close();
    // Act
    const res = await call(broken.app, 'GET', '/apis/cfs/healthz');
    // Assert
    expect(res.status).toBe(503);
    expect(res.body.db_status).toBe('not_available');
  }, 30_000);
});

describe('IMS health and version', () => {
  const t = cfsTestAppForSuite();

  it('answers ready and live with {} and version with the product version as a string', async () => {
    // Act
    const ready = await call(t.app, 'GET', '/apis/ims/healthz/ready');
    const live = await call(t.app, 'GET', '/apis/ims/healthz/live');
    const version = await call(t.app, 'GET', '/apis/ims/version');
    // Assert
    expect([ready.status, live.status, version.status]).toEqual([200, 200, 200]);
    expect(ready.body).toEqual({});
    expect(live.body).toEqual({});
    expect(version.body).toBe(`${major}.${minor}.${patch}`);
    expect(await imsResponseErrors('get', '/version', 200, version.body)).toBeUndefined();
  });

  it('answers ready with 500 naming the stores when the table is gone', async () => {
    // Arrange
    const broken = await startCfsTestApp();
    await broken.close();
    // Act
    const ready = await call(broken.app, 'GET', '/apis/ims/healthz/ready');
    const live = await call(broken.app, 'GET', '/apis/ims/healthz/live');
    // Assert
    expect(ready.status).toBe(500);
    expect(ready.body).toEqual({ stores: 'not_available' });
    expect(live.status).toBe(200);
  }, 30_000);
});

describe('CFS and IMS resources refused by design: one line naming the feature', () => {
  const t = cfsTestAppForSuite();

  it.each([
    ['GET', '/apis/cfs/v2/components', CFS_COMPONENTS_REFUSAL],
    ['GET', '/apis/cfs/v3/components', CFS_COMPONENTS_REFUSAL],
    ['PATCH', '/apis/cfs/v3/components/x1000c0s0b0n0', CFS_COMPONENTS_REFUSAL],
    ['GET', '/apis/ims/v3/jobs', IMS_REFUSALS.jobs],
    ['POST', '/apis/ims/jobs', IMS_REFUSALS.jobs],
    ['GET', '/apis/ims/v3/recipes/abc', IMS_REFUSALS.recipes],
    ['GET', '/apis/ims/v3/public-keys', IMS_REFUSALS['public-keys']],
    ['GET', '/apis/ims/v3/remote-build-nodes/status', IMS_REFUSALS['remote-build-nodes']],
    ['GET', '/apis/ims/v3/deleted/images', IMS_REFUSALS.deleted],
    ['GET', '/apis/ims/v2/images', IMS_V2_REFUSAL],
  ])('answers %s %s with a 404 problem naming the feature', async (method, path, refusal) => {
    // Act
    const res = await call(t.app, method, path, method === 'GET' ? undefined : {});
    // Assert
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.body).toMatchObject({ title: 'Not Found', status: 404, detail: refusal });
    expect(res.body.detail).toMatch(/ are not part of this product| is not part of this product/);
    expect(res.body.detail).not.toContain('\n');
  });
});
