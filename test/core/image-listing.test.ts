import { describe, expect, it } from 'vitest';
import { listImagePage } from '../../functions/core/images/read-images.ts';
import type { ImageRecord } from '../../functions/core/model/image.ts';
import { imageWorld } from './images-fakes.ts';

function image(n: number, name = `image-${n}`): ImageRecord {
  return { id: `id-${String(n).padStart(2, '0')}`, name, created: '2026-12-06T00:00:00Z', arch: 'x86_64', metadata: {}, artifact_keys: [] };
}

describe('the image listing (core, over the registry port)', () => {
  it('cuts a listing without paging parameters at the byte bound, and the next part starts after the last image answered', async () => {
    // Arrange
    const world = await imageWorld();
    for (let n = 0; n < 10; n++) await world.registry.create(image(n));
    const options = { measure: () => 100, maxBytes: 450 };
    try {
      // Act
      const first = await listImagePage(world.deps, {}, options);
      const second = await listImagePage(world.deps, { after_id: [first.next!] }, options);
      const third = await listImagePage(world.deps, { after_id: [second.next!] }, options);
      // Assert
      expect(first.images.map((i) => i.id)).toEqual(['id-00', 'id-01', 'id-02', 'id-03']);
      expect(second.images.map((i) => i.id)).toEqual(['id-04', 'id-05', 'id-06', 'id-07']);
      expect(third.images.map((i) => i.id)).toEqual(['id-08', 'id-09']);
      expect(third.next).toBeUndefined();
    } finally {
      await world.cleanup();
    }
  });

  it('reads on past one registry page for a sparse filter until it finds the match, within one request', async () => {
    // Arrange: one match after 1,500 images that do not match (one registry page examines 1,000 for limit 10).
    const world = await imageWorld();
    for (let n = 0; n < 1500; n++) await world.registry.create({ ...image(n), id: `id-${String(n).padStart(5, '0')}` });
    await world.registry.create({ ...image(0, 'needle'), id: 'id-99999' });
    try {
      // Act
      const page = await listImagePage(world.deps, { name_contains: ['needle'], limit: ['10'] });
      // Assert
      expect(page.images.map((i) => i.name)).toEqual(['needle']);
      expect(page.read).toBe(1501);
      expect(page.next).toBeUndefined();
    } finally {
      await world.cleanup();
    }
  });

  it('answers a short page that says the search stopped early when the time budget runs out, and its next finds the rest', async () => {
    // Arrange: a clock that moves 11 s at every reading, so the 10 s budget is spent after one registry page.
    const world = await imageWorld();
    for (let n = 0; n < 1500; n++) await world.registry.create({ ...image(n), id: `id-${String(n).padStart(5, '0')}` });
    await world.registry.create({ ...image(0, 'needle'), id: 'id-99999' });
    let now = Date.parse('2026-12-06T12:00:00Z');
    const deps = { ...world.deps, clock: { now: () => new Date((now += 11_000)) } };
    try {
      // Act
      const first = await listImagePage(deps, { name_contains: ['needle'], limit: ['10'] });
      const second = await listImagePage(deps, { name_contains: ['needle'], limit: ['10'], after_id: [first.next!] });
      // Assert
      expect(first.images).toEqual([]);
      expect(first.read).toBe(1000);
      expect(first.stoppedEarly).toBe(true);
      expect(second.images.map((i) => i.name)).toEqual(['needle']);
      expect(second.next).toBeUndefined();
    } finally {
      await world.cleanup();
    }
  });
});
