import { NotFoundError } from '../errors.ts';
import type { ImageManifest, ImageRecord } from '../model/image.ts';
import { compileGlob } from '../automations/glob.ts';
import { LISTING_MAX_STORE_PAGES, LISTING_TIME_BUDGET_MS } from '../sessions/list-sessions.ts';
import { parseQueryParams } from '../sessions/query-params.ts';
import { fieldError } from '../sessions/validation.ts';
import type { ImageCursor } from '../../ports/image-registry.ts';
import type { ImageDeps } from './image-deps.ts';
import { imageListParamsSchema } from './list-params.ts';
import { readManifest } from './manifest.ts';
import { ensureReferenceIndex } from './reference-index.ts';

/**
 * One image record; NotFoundError (404) when missing. A session's result is shown from the
 * moment its session's completion was written (the commit point), though the step that reveals
 * it may not have run yet: a client that saw `complete` finds its results at once.
 */
export async function getImage(deps: Pick<ImageDeps, 'images' | 'sessions'>, id: string): Promise<ImageRecord> {
  const image = (await deps.images.get(id)) ?? (await committedResult(deps, id));
  if (!image) throw new NotFoundError('image', id);
  return image;
}

/** A result still hidden whose session has committed it (complete, succeeded, in its artifacts), as it will be shown. */
async function committedResult(deps: Pick<ImageDeps, 'images' | 'sessions'>, id: string): Promise<ImageRecord | undefined> {
  const pending = await deps.images.get(id, { includePending: true });
  if (!pending) return undefined;
  // Revealed between the two reads (the reveal step runs beside this request): shown as it is now.
  const owner = pending.pending_session;
  if (owner === undefined) return pending;
  const session = await deps.sessions.get(owner);
  const committed = session?.status.session.status === 'complete' && session.status.session.succeeded === 'true' && session.status.artifacts.some((a) => a.result_id === id);
  if (!committed) return undefined;
  const { pending_session: _pending, ...shown } = pending;
  return shown;
}

/** All image records, ordered by id. */
export async function listImages(deps: Pick<ImageDeps, 'images'>): Promise<ImageRecord[]> {
  return deps.images.list();
}

/** The manifest of an image; NotFoundError when the image or its manifest does not exist. */
export async function getImageManifest(deps: Pick<ImageDeps, 'images' | 'artifacts' | 'sessions'>, id: string): Promise<ImageManifest> {
  const manifest = await readManifest(deps.artifacts, await getImage(deps, id));
  if (!manifest) throw new NotFoundError('manifest of image', id);
  return manifest;
}

/** A listing's answer must fit the API function's response (6 MB in Lambda): at most this many bytes of JSON. */
export const MAX_LIST_RESPONSE_BYTES = 5 * 1024 * 1024;
/** How many items one registry page of a filtered listing may examine: the session store's budget (10 x the page size, at least 1,000). */
function listingReadBudget(limit: number): number {
  return Math.max(1000, 10 * limit);
}

/** How many images a listing without `limit` asks the registry for at a time. */
const UNLIMITED_CHUNK = 1000;

/** One page of the image listing; `next` is the `after_id` that continues it (absent at the end). */
export interface ImageListPage {
  images: ImageRecord[];
  next?: string;
  /** Items the registry examined. */
  read: number;
  /** The search's time or page budget ran out before `limit` matches were found: `next` continues the search. */
  stoppedEarly?: boolean;
}

function encodeCursor(cursor: ImageCursor): string {
  return Buffer.from(JSON.stringify(cursor.name === undefined ? { i: cursor.id } : { i: cursor.id, n: cursor.name })).toString('base64url');
}

/** The literal text a glob's matches all start with (up to its first wildcard or escape). */
function literalPrefix(glob: string): string {
  const end = glob.search(/[*?[\\]/);
  return end === -1 ? glob : glob.slice(0, end);
}

/** A cursor as this listing wrote it for this same query, or a 400 naming `after_id` (a cursor altered, or taken from another query). */
function decodeCursor(value: string, order: { byName: boolean; name?: string; namePrefix?: string }): ImageCursor {
  const refuse = (why: string) => fieldError('after_id', `is not a cursor this listing wrote for this query (${why}); start again without after_id`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    throw refuse('not readable');
  }
  const { i, n, ...rest } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { i?: unknown; n?: unknown };
  if (typeof i !== 'string' || i === '' || (n !== undefined && typeof n !== 'string') || Object.keys(rest).length > 0 || encodeCursor({ id: i, name: n as string | undefined }) !== value) {
    throw refuse('altered');
  }
  if (order.byName !== (n !== undefined)) throw refuse(order.byName ? 'an id-order cursor for a name listing' : 'a name-order cursor for an id listing');
  if (order.name !== undefined && n !== order.name) throw refuse('for another name');
  if (order.namePrefix !== undefined && !(n as string).startsWith(order.namePrefix)) throw refuse('outside the name prefix');
  return { id: i, ...(n !== undefined ? { name: n as string } : {}) };
}

/**
 * `GET /apis/ims/v3/images` with this product's paging extension. `name` and `name_prefix` (and a
 * glob's literal start) read the registry's name index in name order; otherwise images come in
 * id order. `name_contains`, `name_glob`, `arch` and `metadata_key` are checked on each image
 * read: the listing reads on until it has `limit` matches or the images end, within the session
 * listings' time budget and page cap; only when those run out is a page short (`stoppedEarly`,
 * and `next` goes on searching from where it stopped).
 * Without `limit` or `after_id` the whole list is answered while its JSON fits `maxBytes`
 * (what `measure` says each image costs); past that, and whenever `limit` is reached, `next`
 * says where to continue. The same bytes bound applies to every page.
 */
export async function listImagePage(
  deps: Pick<ImageDeps, 'images' | 'artifacts' | 'clock'>,
  query: Record<string, string[]>,
  options: { measure?: (image: ImageRecord) => number; maxBytes?: number } = {},
): Promise<ImageListPage> {
  const params = parseQueryParams(imageListParamsSchema, query);
  let glob: RegExp | undefined;
  if (params.name_glob !== undefined) {
    try {
      glob = compileGlob(params.name_glob);
    } catch (error) {
      throw fieldError('name_glob', `is not a usable glob: ${(error as Error).message}`);
    }
  }
  const globPrefix = params.name_glob !== undefined && params.name === undefined && params.name_prefix === undefined ? literalPrefix(params.name_glob) : '';
  const namePrefix = params.name === undefined ? (params.name_prefix ?? (globPrefix || undefined)) : undefined;
  const byName = params.name !== undefined || namePrefix !== undefined;
  const after = params.after_id === undefined ? undefined : decodeCursor(params.after_id, { byName, name: params.name, namePrefix });
  const checks: Array<(image: ImageRecord) => boolean> = [];
  if (params.name_contains !== undefined) checks.push((image) => image.name.includes(params.name_contains!));
  if (glob) checks.push((image) => glob.test(image.name));
  if (params.arch !== undefined) checks.push((image) => image.arch === params.arch);
  if (params.metadata_key !== undefined) checks.push((image) => Object.hasOwn(image.metadata ?? {}, params.metadata_key!));
  const matches = checks.length > 0 ? (image: ImageRecord) => checks.every((check) => check(image)) : undefined;

  await ensureReferenceIndex(deps);
  const maxBytes = options.maxBytes ?? MAX_LIST_RESPONSE_BYTES;
  const measure = options.measure ?? ((image: ImageRecord) => JSON.stringify(image).length + 1);
  const limit = params.limit ?? Number.POSITIVE_INFINITY;
  const readBudget = matches ? listingReadBudget(params.limit ?? UNLIMITED_CHUNK) : Number.MAX_SAFE_INTEGER;
  const started = deps.clock.now().getTime();
  const images: ImageRecord[] = [];
  let bytes = 2;
  let read = 0;
  let cursor = after;
  // A filter keeps reading registry pages (each within the read budget) until the page is full or
  // the images end, as the session listings do, for at most their time budget and page cap.
  for (let pages = 1; ; pages++) {
    const page = await deps.images.page({ limit: Math.min(limit - images.length, UNLIMITED_CHUNK), after: cursor, name: params.name, namePrefix, matches, readBudget });
    read += page.read;
    for (const image of page.images) {
      const size = measure(image);
      // The first image always goes in (one record is far below the bound), so every page moves on.
      if (bytes + size > maxBytes && images.length > 0) return { images, next: encodeCursor(cursorOf(images[images.length - 1]!, byName)), read };
      bytes += size;
      images.push(image);
    }
    if (!page.next) return { images, read };
    cursor = page.next;
    const spent = pages >= LISTING_MAX_STORE_PAGES || deps.clock.now().getTime() - started >= LISTING_TIME_BUDGET_MS;
    if (images.length >= limit || spent) return { images, next: encodeCursor(cursor), read, ...(spent && images.length < limit ? { stoppedEarly: true } : {}) };
  }
}

function cursorOf(image: ImageRecord, byName: boolean): ImageCursor {
  return byName ? { id: image.id, name: image.name } : { id: image.id };
}
