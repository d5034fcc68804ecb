import { describe, expect, it } from 'vitest';
import { IMG1 } from '../helpers/cfs-fakes.ts';
import { call, cfsTestAppForSuite } from './cfs-app.ts';

// Issue 17, item 6: session tags are data. A key named after Object.prototype's members is kept
// at create (v3 and v2), stored and read back; an assignment to `__proto__` would have dropped it.

const target = { definition: 'image', groups: [{ name: 'Compute', members: [IMG1] }] };
const TAGS = '{"__proto__": "a", "constructor": "b", "team": "c"}';

describe('CFS session tags', () => {
  const t = cfsTestAppForSuite({ configuration: 'tagged' });

  it.each([
    ['v3', '/apis/cfs/v3/sessions', `{"name": "tags-v3", "configuration_name": "tagged", "target": ${JSON.stringify(target)}, "tags": ${TAGS}}`],
    ['v2', '/apis/cfs/v2/sessions', `{"name": "tags-v2", "configurationName": "tagged", "target": ${JSON.stringify(target)}, "tags": ${TAGS}}`],
  ])('keeps __proto__ and constructor tags given at a %s create, stored and shown', async (version, path, body) => {
    // Act
    const created = await call(t.app, 'POST', path, body);
    const name = `tags-${version}`;
    const got = await call(t.app, 'GET', `/apis/cfs/v3/sessions/${name}`);
    const stored = await t.ports.sessions.get(name);
    // Assert
    expect(created.status, JSON.stringify(created.body)).toBe(version === 'v3' ? 201 : 200);
    const expected = [['__proto__', 'a'], ['constructor', 'b'], ['team', 'c']];
    expect(Object.entries(created.body.tags).sort()).toEqual(expected);
    expect(Object.entries(got.body.tags).sort()).toEqual(expected);
    expect(Object.entries(stored!.tags).sort()).toEqual(expected);
  });

  it('refuses a __proto__ tag that is not a string, naming it, and creates nothing', async () => {
    // Act
    const created = await call(t.app, 'POST', '/apis/cfs/v3/sessions', `{"name": "bad-tag", "configuration_name": "tagged", "target": ${JSON.stringify(target)}, "tags": {"__proto__": {"polluted": "yes"}}}`);
    // Assert
    expect(created.status).toBe(400);
    expect(created.body.field).toBe('tags.__proto__');
    expect(await t.ports.sessions.get('bad-tag')).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
