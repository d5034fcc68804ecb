import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startCfsTestApp, type CfsTestApp } from './cfs-app.ts';

// Issue 17, items 6 and 9: image metadata keys are data (any key a client picks, including the
// names of Object.prototype's members, is stored in the table and read back), and the `cfs_*`
// lineage keys are the workflow's, refused on PATCH and create.

const IMAGES = '/apis/ims/v3/images';
const AWKWARD_KEYS = ['constructor', '__proto__', 'hasOwnProperty', 'toString', 'valueOf', '~constructor', '~~__proto__'];

describe('IMS image metadata keys', () => {
  let t: CfsTestApp;
  beforeAll(async () => void (t = await startCfsTestApp()));
  afterAll(async () => t.close());

  async function newImage(name: string): Promise<string> {
    const created = await call(t.app, 'POST', IMAGES, { name });
    expect(created.status).toBe(201);
    return created.body.id as string;
  }

  it.each(AWKWARD_KEYS)('stores, returns, lists and removes the metadata key %s like any other', async (key) => {
    // Arrange
    const id = await newImage(`keys-${key}`);

    // Act
    const set = await call(t.app, 'PATCH', `${IMAGES}/${id}`, `{"metadata": {"operation": "set", "key": ${JSON.stringify(key)}, "value": "v1"}}`);
    const got = await call(t.app, 'GET', `${IMAGES}/${id}`);
    const listed = (await call(t.app, 'GET', IMAGES)).body.find((i: { id: string }) => i.id === id);
    const stored = await t.ports.images.get(id);
    const removed = await call(t.app, 'PATCH', `${IMAGES}/${id}`, `{"metadata": {"operation": "remove", "key": ${JSON.stringify(key)}}}`);

    // Assert
    expect(set.status, set.text).toBe(200);
    expect(Object.entries(JSON.parse(set.text).metadata)).toEqual([[key, 'v1']]);
    expect(Object.entries(JSON.parse(got.text).metadata)).toEqual([[key, 'v1']]);
    expect(Object.entries(listed.metadata)).toEqual([[key, 'v1']]);
    expect(Object.hasOwn(stored!.metadata!, key) && stored!.metadata![key]).toBe('v1');
    expect(removed.status, removed.text).toBe(200);
    expect(JSON.parse(removed.text).metadata).toEqual({});
  });

  it('keeps __proto__ and constructor keys given at create', async () => {
    // Act
    const created = await call(t.app, 'POST', IMAGES, '{"name": "created-keys", "metadata": {"__proto__": "a", "constructor": "b", "team": "c"}}');
    const got = await call(t.app, 'GET', `${IMAGES}/${created.body.id}`);

    // Assert
    expect(created.status, created.text).toBe(201);
    expect(Object.entries(JSON.parse(got.text).metadata)).toEqual([
      ['__proto__', 'a'],
      ['constructor', 'b'],
      ['team', 'c'],
    ]);
  });

  it('refuses a __proto__ metadata value that is not a string, naming it', async () => {
    // Act
    const created = await call(t.app, 'POST', IMAGES, '{"name": "bad-proto", "metadata": {"__proto__": {"polluted": "yes"}}}');

    // Assert
    expect(created.status).toBe(400);
    expect(created.body.field).toBe('metadata.__proto__');
    expect(({} as { polluted?: string }).polluted).toBeUndefined();
  });
});

describe('IMS lineage keys (cfs_*)', () => {
  let t: CfsTestApp;
  beforeAll(async () => void (t = await startCfsTestApp()));
  afterAll(async () => t.close());

  it.each([
    ['sets', '{"operation": "set", "key": "cfs_source_image_id", "value": "forged"}', 'metadata.key', 'cfs_source_image_id'],
    ['removes', '{"operation": "remove", "key": "cfs_fingerprint"}', 'metadata.key', 'cfs_fingerprint'],
    ['sets, second in a list,', '[{"operation": "set", "key": "team", "value": "a"}, {"operation": "set", "key": "cfs_automation", "value": "x"}]', 'metadata[1].key', 'cfs_automation'],
  ])('refuses a PATCH that %s a lineage key with a 400 naming the key, changing nothing', async (_what, operations, field, key) => {
    // Arrange: an image registered by the workflow (through the registry, as the workflow does) with its lineage.
    const id = crypto.randomUUID();
    const lineage = { cfs_source_image_id: 'source-id', cfs_session: 's1', cfs_fingerprint: 'f'.repeat(64), cfs_automation: 'nightly' };
    await t.ports.images.create({ id, name: `result-${key}`, created: new Date().toISOString(), arch: 'x86_64', metadata: lineage });

    // Act
    const patched = await call(t.app, 'PATCH', `${IMAGES}/${id}`, `{"metadata": ${operations}}`);
    const got = await call(t.app, 'GET', `${IMAGES}/${id}`);

    // Assert
    expect(patched.status, patched.text).toBe(400);
    expect(patched.body.field).toBe(field);
    expect(patched.body.detail).toContain(`'${key}'`);
    expect(got.body.metadata).toEqual(lineage);
  });

  it('refuses lineage keys in a create body, naming the key', async () => {
    // Act
    const created = await call(t.app, 'POST', IMAGES, { name: 'forged', metadata: { team: 'a', cfs_session: 'someone-else' } });

    // Assert
    expect(created.status).toBe(400);
    expect(created.body.field).toBe('metadata.cfs_session');
    expect((await call(t.app, 'GET', IMAGES)).body.map((i: { name: string }) => i.name)).not.toContain('forged');
  });
});
