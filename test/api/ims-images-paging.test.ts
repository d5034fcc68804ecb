import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageRecord } from '../../functions/core/model/image.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { bearer } from '../helpers/api-token.ts';
import { imsResponseErrors } from './ims-spec.ts';

let runtime: EmbeddedRuntime;
let dataDir: string;

// Response bodies are whatever the API sent; the tests assert on their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function get(path: string): Promise<{ status: number; body: any; link: string | null }> {
  const response = await fetch(`${runtime.url}${path}`, { headers: bearer(runtime) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, link: response.headers.get('link') };
}

/** The URL a `Link: <...>; rel="next"` header points at, resolved against the request's. */
function nextOf(path: string, link: string | null): string | undefined {
  const match = link ? /^<([^>]*)>; rel="next"$/.exec(link) : null;
  if (!match) return undefined;
  const url = new URL(match[1]!, `${runtime.url}${path}`);
  return `${url.pathname}${url.search}`;
}

/** Every page of a listing, following Link headers. */
async function allPages(path: string): Promise<{ pages: string[][]; ids: string[] }> {
  const pages: string[][] = [];
  let next: string | undefined = path;
  while (next) {
    const page = await get(next);
    expect(page.status).toBe(200);
    pages.push(page.body.map((image: { id: string }) => image.id));
    next = nextOf(next, page.link);
  }
  return { pages, ids: pages.flat() };
}

function image(id: string, name: string, extra: Partial<ImageRecord> = {}): ImageRecord {
  return { id, name, created: '2026-12-06T00:00:00Z', arch: 'x86_64', metadata: {}, artifact_keys: [], ...extra };
}

const images = [
  image('a0000000-0000-4000-8000-000000000001', 'compute-base', { metadata: { site: 'a' } }),
  image('a0000000-0000-4000-8000-000000000002', 'compute-gpu', { arch: 'aarch64' }),
  image('a0000000-0000-4000-8000-000000000003', 'compute-base'),
  image('a0000000-0000-4000-8000-000000000004', 'uan-base', { metadata: { site: 'b' } }),
  image('a0000000-0000-4000-8000-000000000005', 'compute-login'),
  image('a0000000-0000-4000-8000-000000000006', 'hidden-result', { pending_session: 's1' }),
  image('a0000000-0000-4000-8000-000000000007', 'uan-gpu', { arch: 'aarch64' }),
];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'ims-paging-'));
  runtime = await startEmbeddedRuntime({ dataDir, port: 0 });
  for (const record of images) await runtime.ports.images.create(record);
});
afterAll(async () => {
  await runtime.close();
  await rm(dataDir, { recursive: true, force: true });
});

const visible = images.filter((i) => i.pending_session === undefined);

describe('IMS image listing: paging and filters', () => {
  it('answers the plain IMS array of every visible image without paging parameters, with no Link', async () => {
    // Act
    const list = await get('/apis/ims/v3/images');
    // Assert
    expect(list.status).toBe(200);
    expect(list.link).toBeNull();
    expect(await imsResponseErrors('GET', '/v3/images', 200, list.body)).toBeUndefined();
    expect(list.body.map((i: { id: string }) => i.id)).toEqual(visible.map((i) => i.id));
  });

  it('pages by limit with a Link to the next page until every image was listed once', async () => {
    // Act
    const { pages, ids } = await allPages('/apis/ims/v3/images?limit=2');
    // Assert
    expect(pages.map((page) => page.length)).toEqual([2, 2, 2]);
    expect(ids).toEqual(visible.map((i) => i.id));
  });

  it('lists by exact name and by name prefix in name order, across pages, from the name index', async () => {
    // Act
    const exact = await allPages('/apis/ims/v3/images?name=compute-base&limit=1');
    const prefix = await allPages('/apis/ims/v3/images?name_prefix=compute-&limit=2');
    // Assert
    expect(exact.ids).toEqual([images[0]!.id, images[2]!.id]);
    expect(prefix.ids).toEqual([images[0]!.id, images[2]!.id, images[1]!.id, images[4]!.id]);
  });

  it('filters by name_contains, name_glob, arch and metadata_key, alone and together', async () => {
    // Act
    const contains = await allPages('/apis/ims/v3/images?name_contains=gpu');
    const glob = await allPages('/apis/ims/v3/images?name_glob=*-base');
    const globWithPrefix = await allPages('/apis/ims/v3/images?name_glob=uan-*&limit=1');
    const arch = await allPages('/apis/ims/v3/images?arch=aarch64');
    const metadata = await allPages('/apis/ims/v3/images?metadata_key=site&name_prefix=uan');
    // Assert
    expect(contains.ids).toEqual([images[1]!.id, images[6]!.id]);
    expect(glob.ids).toEqual([images[0]!.id, images[2]!.id, images[3]!.id]);
    expect(globWithPrefix.ids).toEqual([images[3]!.id, images[6]!.id]);
    expect(arch.ids).toEqual([images[1]!.id, images[6]!.id]);
    expect(metadata.ids).toEqual([images[3]!.id]);
  });

  it('refuses a tampered cursor, one from another query, and an unknown parameter with 400 naming the parameter', async () => {
    // Arrange
    const first = await get('/apis/ims/v3/images?name_prefix=compute-&limit=1');
    const cursor = new URLSearchParams(/^<\?([^>]*)>/.exec(first.link!)![1]).get('after_id')!;
    const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { i: string; n: string };
    const altered = Buffer.from(JSON.stringify({ ...decoded, n: 'uan-base' })).toString('base64url');
    // Act
    const garbage = await get('/apis/ims/v3/images?limit=1&after_id=not-a-cursor!');
    const outsidePrefix = await get(`/apis/ims/v3/images?name_prefix=compute-&limit=1&after_id=${altered}`);
    const otherOrder = await get(`/apis/ims/v3/images?limit=1&after_id=${cursor}`);
    const unknown = await get('/apis/ims/v3/images?page=2');
    const badLimit = await get('/apis/ims/v3/images?limit=0');
    const badGlob = await get('/apis/ims/v3/images?name_glob=[a');
    // Assert
    for (const refused of [garbage, outsidePrefix, otherOrder, unknown, badLimit, badGlob]) expect(refused.status).toBe(400);
    expect(garbage.body.detail).toContain('after_id');
    expect(outsidePrefix.body.detail).toContain('after_id');
    expect(otherOrder.body.detail).toContain('after_id');
    expect(unknown.body.detail).toContain('page');
    expect(badGlob.body.detail).toContain('name_glob');
    expect((await get('/apis/ims/v3/images')).body).toHaveLength(visible.length);
  });

  it('answers the first part as an array with a Link when the whole list is larger than one response may be', async () => {
    // Arrange: 30 images of ~200 KB of metadata each (~6 MB of JSON, past the 5 MB bound).
    const big = Array.from({ length: 30 }, (_, n) =>
      image(`b0000000-0000-4000-8000-${String(n).padStart(12, '0')}`, `big-${n}`, { metadata: { blob: 'x'.repeat(200_000) } }),
    );
    for (const record of big) await runtime.ports.images.create(record);
    try {
      // Act
      const first = await get('/apis/ims/v3/images?name_prefix=big-');
      const { ids } = await allPages('/apis/ims/v3/images?name_prefix=big-');
      // Assert
      expect(first.status).toBe(200);
      expect(first.link).toMatch(/^<\?.*after_id=.*>; rel="next"$/);
      expect(first.body.length).toBeGreaterThan(20);
      expect(first.body.length).toBeLessThan(30);
      expect(JSON.stringify(first.body).length).toBeLessThanOrEqual(5 * 1024 * 1024);
      expect(new Set(ids).size).toBe(30);
    } finally {
      for (const record of big) await runtime.ports.images.delete(record.id);
    }
  });
});
