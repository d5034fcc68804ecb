import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startCfsTestApp, type CfsTestApp } from './cfs-app.ts';

// Issue 17, item 7: no answer carries a clone URL's credentials (v2 and v3, get, list, PUT,
// PATCH, the dashboard's mirror, refusals), a PUT of the masked form keeps the stored secret,
// and the stored record (what sessions pin and the runner clones) keeps the real URL.

const SECRET = 's3cret-pw-17';
const TOKEN = 'ghp_tokenAsUserName17';
const COMMIT = 'c'.repeat(40);

describe('clone URL credentials in configuration answers', () => {
  let t: CfsTestApp;
  beforeAll(async () => void (t = await startCfsTestApp()));
  afterAll(async () => t.close());

  const body = {
    layers: [
      { name: 'private', clone_url: `https://cfs:${SECRET}@git.example/private.git`, commit: COMMIT, playbook: 'site.yml' },
      { name: 'token', clone_url: `https://${TOKEN}@git.example/token.git`, commit: COMMIT, playbook: 'site.yml' },
      { name: 'public', clone_url: 'https://git.example/public.git', commit: COMMIT, playbook: 'site.yml' },
    ],
    additional_inventory: { clone_url: `https://cfs:${SECRET}@git.example/inventory.git`, commit: COMMIT },
  };

  it('masks them in every answer about the configuration while the store keeps them', async () => {
    // Act
    const answers = [
      await call(t.app, 'PUT', '/apis/cfs/v3/configurations/creds', body),
      await call(t.app, 'GET', '/apis/cfs/v3/configurations/creds'),
      await call(t.app, 'GET', '/apis/cfs/v3/configurations'),
      await call(t.app, 'GET', '/apis/cfs/v2/configurations/creds'),
      await call(t.app, 'GET', '/apis/cfs/v2/configurations'),
      await call(t.app, 'PATCH', '/apis/cfs/v3/configurations/creds'),
      await call(t.app, 'PATCH', '/apis/cfs/v2/configurations/creds'),
      await call(t.app, 'GET', '/dashboard/apis/cfs/v3/configurations'),
    ];
    const stored = await t.ports.configurations.get('creds');

    // Assert
    for (const answer of answers) {
      expect(answer.status, answer.text).toBe(200);
      expect(answer.text).not.toContain(SECRET);
      expect(answer.text).not.toContain(TOKEN);
    }
    expect(answers[1]!.body.layers.map((l: { clone_url: string }) => l.clone_url)).toEqual([
      'https://cfs:***@git.example/private.git',
      'https://***@git.example/token.git',
      'https://git.example/public.git',
    ]);
    expect(answers[3]!.body.additional_inventory.cloneUrl).toBe('https://cfs:***@git.example/inventory.git');
    expect(stored!.layers.map((l) => l.clone_url)).toEqual(body.layers.map((l) => l.clone_url));
    expect(stored!.additional_inventory!.clone_url).toBe(body.additional_inventory.clone_url);
  });

  it('keeps the stored credentials when a PUT sends back the masked form, and drops them when the URL is sent without', async () => {
    // Arrange
    await call(t.app, 'PUT', '/apis/cfs/v3/configurations/round-trip', body);
    const shown = (await call(t.app, 'GET', '/apis/cfs/v3/configurations/round-trip')).body;
    delete shown.name;
    delete shown.last_updated;

    // Act
    const putBack = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/round-trip', shown);
    const afterPutBack = await t.ports.configurations.get('round-trip');
    const cleared = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/round-trip', {
      layers: [{ name: 'private', clone_url: 'https://git.example/private.git', commit: COMMIT, playbook: 'site.yml' }],
    });
    const afterClear = await t.ports.configurations.get('round-trip');

    // Assert
    expect(putBack.status, putBack.text).toBe(200);
    expect(putBack.text).not.toContain(SECRET);
    expect(afterPutBack!.layers.map((l) => l.clone_url)).toEqual(body.layers.map((l) => l.clone_url));
    expect(afterPutBack!.additional_inventory!.clone_url).toBe(body.additional_inventory.clone_url);
    expect(cleared.status).toBe(200);
    expect(afterClear!.layers[0]!.clone_url).toBe('https://git.example/private.git');
  });

  it.each([
    ['a refused scheme', `ftp://cfs:${SECRET}@git.example/private.git`],
    ['a leading dash', `-https://cfs:${SECRET}@git.example/x.git`],
  ])('refuses a clone URL with %s without quoting its credentials, naming the field', async (_what, cloneUrl) => {
    // Act
    const refused = await call(t.app, 'PUT', '/apis/cfs/v3/configurations/refused', { layers: [{ clone_url: cloneUrl, commit: COMMIT, playbook: 'site.yml' }] });

    // Assert
    expect(refused.status).toBe(400);
    expect(refused.body.field).toBe('layers[0].clone_url');
    expect(refused.text).not.toContain(SECRET);
  });
});
