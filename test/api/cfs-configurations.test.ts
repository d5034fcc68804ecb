import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMG1 } from '../helpers/cfs-fakes.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { call, startCfsTestApp, type CfsTestApp } from './cfs-app.ts';
import { cfsResponseErrors } from './cfs-spec.ts';

describe('CFS configurations API with branches resolved by real git', () => {
  let t: CfsTestApp;
  let repo: TempRepo;
  let mainCommit: string;
  let otherCommit: string;
  beforeAll(async () => {
    t = await startCfsTestApp();
    repo = makeTempRepo();
    mainCommit = repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
    otherCommit = repo.commit('other', 'other.yml', '- hosts: all\n  tasks: []\n');
  });
  afterAll(async () => {
    await t.close();
    repo.dispose();
  });

  it('stores a v3 configuration with its branch resolved to the commit, valid against the spec', async () => {
    // Act
    const res = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/cfg-v3', {
      description: 'example',
      layers: [
        { name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main', special_parameters: { ims_require_dkms: true } },
        { clone_url: repo.url, playbook: 'other.yml', commit: otherCommit },
      ],
    });
    // Assert
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      name: 'cfg-v3',
      description: 'example',
      layers: [
        { name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main', commit: mainCommit },
        { clone_url: repo.url, playbook: 'other.yml', commit: otherCommit },
      ],
    });
    expect(res.body.last_updated).toMatch(/Z$/);
    expect(await cfsResponseErrors('put', '/v3/configurations/{configuration_id}', 200, res.body)).toBeUndefined();
  });

  it('accepts a v3-style file at v2 and a v2-style file at v3, answering in each version\'s shape', async () => {
    // Act
    const atV2 = await call(t.app, 'PUT', '/apis/cfs/v2/configurations/cross-1', { layers: [{ clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] });
    const atV3 = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/cross-2', { layers: [{ cloneUrl: repo.url, playbook: 'site.yml', branch: 'main' }] });
    // Assert
    expect(atV2.status).toBe(200);
    expect(atV2.body.layers[0]).toEqual({ cloneUrl: repo.url, playbook: 'site.yml', branch: 'main', commit: mainCommit });
    expect(atV2.body.lastUpdated).toMatch(/Z$/);
    expect(await cfsResponseErrors('put', '/v2/configurations/{configuration_id}', 200, atV2.body)).toBeUndefined();
    expect(atV3.body.layers[0]).toEqual({ clone_url: repo.url, playbook: 'site.yml', branch: 'main', commit: mainCommit });
    expect(await cfsResponseErrors('put', '/v3/configurations/{configuration_id}', 200, atV3.body)).toBeUndefined();
  });

  it('drops branches when drop_branches=True, parsed case-insensitively', async () => {
    // Act
    const res = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/dropped?drop_branches=True', { layers: [{ clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] });
    const bad = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/dropped?drop_branches=yes', { layers: [] });
    // Assert
    expect(res.body.layers[0]).toEqual({ clone_url: repo.url, playbook: 'site.yml', commit: mainCommit });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toBe("drop_branches: must be true or false, not 'yes'");
  });

  it('answers an unknown branch with a 400 naming the layer', async () => {
    // Act
    const res = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/broken', {
      layers: [
        { clone_url: repo.url, playbook: 'site.yml', branch: 'main' },
        { clone_url: repo.url, playbook: 'other.yml', branch: 'does-not-exist' },
      ],
    });
    const unreachable = await call(t.app, 'PUT', '/apis/cfs/v2/configurations/broken', {
      layers: [{ cloneUrl: `${repo.url}-gone`, playbook: 'site.yml', branch: 'main' }],
    });
    // Assert
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe(`layers[1]: branch 'does-not-exist' does not exist in ${repo.url}`);
    expect(await cfsResponseErrors('put', '/v3/configurations/{configuration_id}', 400, res.body)).toBeUndefined();
    expect(unreachable.status).toBe(400);
    // git's own reason, not the advice it prints after it.
    expect(unreachable.body.detail).toBe(
      `layers[0]: cannot read branch 'main' of ${repo.url}-gone: '${repo.dir}-gone' does not appear to be a git repository; Could not read from remote repository.`,
    );
    expect((await call(t.app, 'GET', '/apis/cfs/v3/configurations/broken')).status).toBe(404);
  });

  it('refuses a clone URL scheme outside the allow-list with a 400 naming the layer', async () => {
    // Act
    const res = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/ext', {
      layers: [{ clone_url: 'ext::sh', playbook: 'site.yml', commit: mainCommit }],
    });
    // Assert
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain("layers[0].clone_url: clone URL 'ext::sh' uses 'ext', which is not allowed here");
  });

  it('names camelCase fields in v2 errors', async () => {
    // Act
    const res = await call(t.app, 'PUT', '/apis/cfs/v2/configurations/v2-bad', { layers: [{ playbook: 'site.yml', commit: mainCommit }] });
    // Assert
    expect(res.status).toBe(400);
    expect(res.body.detail).toBe('layers[0].cloneUrl: is required');
    expect(await cfsResponseErrors('put', '/v2/configurations/{configuration_id}', 400, res.body)).toBeUndefined();
  });

  it('runs site.yml for a v2 layer without playbook, as CFS does, and still requires playbook in v3', async () => {
    // Act
    const v2 = await call(t.app, 'PUT', '/apis/cfs/v2/configurations/no-playbook', { layers: [{ cloneUrl: repo.url, branch: 'main' }] });
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/configurations/no-playbook');
    const v3Put = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/no-playbook-v3', { layers: [{ clone_url: repo.url, branch: 'main' }] });
    // Assert
    expect(v2.status).toBe(200);
    expect(v2.body.layers).toEqual([{ cloneUrl: repo.url, playbook: 'site.yml', branch: 'main', commit: mainCommit }]);
    expect(await cfsResponseErrors('put', '/v2/configurations/{configuration_id}', 200, v2.body)).toBeUndefined();
    expect(v3.body.layers[0].playbook).toBe('site.yml');
    expect(v3Put.status).toBe(400);
    expect(v3Put.body.detail).toMatch(/^layers\[0\]\.playbook: /);
  });

  it('re-resolves branches on PATCH and bumps last_updated', async () => {
    // Arrange
    const before = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/moving', { layers: [{ clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] });
    const newCommit = repo.commit('main', 'site.yml', '- hosts: all\n  tasks: [{debug: {msg: hi}}]\n');
    // Act
    const patched = await call(t.app, 'PATCH', '/apis/cfs/v3/configurations/moving');
    const v2 = await call(t.app, 'PATCH', '/apis/cfs/v2/configurations/moving');
    // Assert
    expect(before.body.layers[0].commit).not.toBe(newCommit);
    expect(patched.status).toBe(200);
    expect(patched.body.layers[0].commit).toBe(newCommit);
    expect(await cfsResponseErrors('patch', '/v3/configurations/{configuration_id}', 200, patched.body)).toBeUndefined();
    expect(await cfsResponseErrors('patch', '/v2/configurations/{configuration_id}', 200, v2.body)).toBeUndefined();
    expect((await call(t.app, 'PATCH', '/apis/cfs/v3/configurations/none')).status).toBe(404);
  });

  it('describes and lists in both versions, valid against the spec', async () => {
    // Act
    const v3 = await call(t.app, 'GET', '/apis/cfs/v3/configurations/cfg-v3');
    const v2 = await call(t.app, 'GET', '/apis/cfs/v2/configurations/cfg-v3');
    const list3 = await call(t.app, 'GET', '/apis/cfs/v3/configurations');
    const list2 = await call(t.app, 'GET', '/apis/cfs/v2/configurations');
    // Assert
    expect(v2.body.layers[0]).toMatchObject({ cloneUrl: repo.url, specialParameters: { imsRequireDkms: true } });
    expect(await cfsResponseErrors('get', '/v3/configurations/{configuration_id}', 200, v3.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/configurations/{configuration_id}', 200, v2.body)).toBeUndefined();
    expect(list3.body.next).toBeNull();
    expect(list3.body.configurations.map((c: { name: string }) => c.name)).toContain('cfg-v3');
    expect(await cfsResponseErrors('get', '/v3/configurations', 200, list3.body)).toBeUndefined();
    expect(await cfsResponseErrors('get', '/v2/configurations', 200, list2.body)).toBeUndefined();
  });

  it('refuses to delete a configuration a pending session uses (400, as the spec lists), deletes it afterwards (204)', async () => {
    // Arrange
    await call(t.app, 'PUT', '/apis/cfs/v3/configurations/in-use', { layers: [{ clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] });
    await call(t.app, 'POST', '/apis/cfs/v3/sessions', { name: 'user', configuration_name: 'in-use', target: { definition: 'image', groups: [{ name: 'Compute', members: [IMG1] }] } });
    // Act
    const refused = await call(t.app, 'DELETE', '/apis/cfs/v3/configurations/in-use');
    await call(t.app, 'DELETE', '/apis/cfs/v3/sessions/user');
    const deleted = await call(t.app, 'DELETE', '/apis/cfs/v2/configurations/in-use');
    const missing = await call(t.app, 'DELETE', '/apis/cfs/v3/configurations/in-use');
    // Assert
    expect(refused.status).toBe(400);
    expect(refused.body.detail).toContain("is used by session 'user'");
    expect(deleted.status).toBe(204);
    expect(missing.status).toBe(404);
  });

  it('refuses tenants instead of pretending to isolate them', async () => {
    // Act
    const header = await call(t.app, 'GET', '/apis/cfs/v3/configurations', undefined, { 'Cray-Tenant-Name': 'blue' });
    const body = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/t', { tenant_name: 'blue', layers: [] });
    // Assert
    expect(header.status).toBe(400);
    expect(header.body.detail).toContain('Cray-Tenant-Name');
    expect(body.status).toBe(400);
    expect(body.body.field).toBe('tenant_name');
  });

  it('answers wrong methods with 405 and Allow', async () => {
    // Act
    const res = await call(t.app, 'POST', '/apis/cfs/v3/configurations/x', {});
    // Assert
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, PUT, PATCH, DELETE, HEAD');
  });
});
