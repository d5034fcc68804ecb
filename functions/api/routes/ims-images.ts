import { Hono, type Context } from 'hono';
import {
  artifactDownloadUrl,
  artifactUploadUrl,
  createImage,
  deleteImage,
  getImage,
  getImageManifest,
  listImagePage,
  patchImage,
  registerUploadedArtifacts,
  type ImageDeps,
} from '../../core/images/index.ts';
import { abortMultipartUpload, completeMultipartUpload, listMultipartUpload, multipartPartUrls, startMultipartUpload } from '../../core/images/multipart.ts';
import type { ImageRecord } from '../../core/model/image.ts';
import type { AppPorts } from '../../ports/index.ts';
import { HttpProblem } from '../http-problem.ts';
import { readJsonBody } from '../json-body.ts';
import { problem } from '../problem.ts';
import { assertQueryParams } from '../route-helpers.ts';

/** Request bodies here are small JSON documents; bytes travel by artifact URL, never in a body. */
const MAX_BODY_BYTES = 1 << 20;

/** The IMS v3 image path; the unversioned IMS aliases (`/apis/ims/images`) serve the same records. */
export const IMS_IMAGES_PATH = '/apis/ims/v3/images';
const IMS_ALIAS_PATH = '/apis/ims/images';

/** The IMS `ImageRecord` of a stored record: no null link, metadata always a map, nothing that is not IMS. */
export function toImageView(record: ImageRecord): Record<string, unknown> {
  return {
    id: record.id,
    created: record.created,
    name: record.name,
    ...(record.link ? { link: record.link } : {}),
    arch: record.arch,
    metadata: record.metadata ?? {},
  };
}

/** Reads a JSON body (at most 1 MiB, counted while it streams); `optional` bodies may be empty. */
function readJson(c: Context, optional = false): Promise<unknown> {
  return readJsonBody(c, { maxBytes: MAX_BODY_BYTES, optional, emptyDetail: 'no input provided: the request needs a JSON body' });
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['true', '1', 'yes'].includes(value.toLowerCase());
}

/**
 * The `Link` header of a page that continues: a relative reference (the same path, every query
 * parameter of the request with `after_id` moved on), so it resolves right behind any prefix.
 */
function nextLink(query: Record<string, string[]>, after: string): string {
  const params = new URLSearchParams();
  for (const [name, values] of Object.entries(query)) if (name !== 'after_id') for (const value of values) params.append(name, value);
  params.set('after_id', after);
  return `<?${params.toString()}>; rel="next"`;
}

function methodNotAllowed(c: Context, allow: string) {
  c.header('Allow', allow);
  return problem(c, 405, `${c.req.method} is not allowed here; allowed: ${allow}`);
}

/**
 * IMS v3 images: list, create, get, patch, delete (as IMS, plus the unversioned aliases), and
 * this product's artifact flow (v3 only):
 *
 * - `POST {images}/{id}/artifacts/{rootfs|kernel|initrd|boot_parameters}/upload-url`, body
 *   optional `{"expires_in": seconds}` (at most, and by default, `uploadUrlSeconds`: 15 minutes):
 *   `{artifact, key, method: "PUT", url, expires_at}`. PUT the bytes to `url` (presigned S3, or
 *   the embedded signed endpoint); it writes a staging key. Refused (409) once the image has a manifest.
 * - `PUT {images}/{id}/manifest`, body `{"artifacts": [{name, size, md5, sha256}]}` (what the
 *   client measured while uploading): the server promotes each staged upload to the key the
 *   manifest links (no URL writes there), checks the store's measurement of it, writes the IMS
 *   `manifest.json`, links the image to it and returns the image record. Repeating it with the
 *   same artifacts returns the same record; a manifest listing a rootfs registers the image.
 * - `GET {images}/{id}/manifest`: the manifest.
 * - `POST {images}/{id}/artifacts/{name}/download-url`, body optional `{"expires_in"}`:
 *   `{artifact, key, method: "GET", url, expires_at, type, size, md5, sha256}`.
 *
 * Deleting takes `?force=true` to delete an image that pending or running sessions target.
 *
 * Listing takes this product's paging extension (core/images/list-params.ts): `limit`,
 * `after_id`, and the filters `name`, `name_prefix`, `name_contains`, `name_glob`, `arch`,
 * `metadata_key`. The answer is always IMS's plain array; when more follow (past `limit`, or
 * past what fits one response without it) a `Link: <?...&after_id=...>; rel="next"` header says
 * where to continue; a filtered search that ran out of time before `limit` matches adds
 * `; search_stopped_early="true"` to it (the session listings' `next` says the same).
 */
export function imsImageRoutes(ports: AppPorts, options: { bucket?: string; uploadUrlSeconds?: number } = {}): Hono {
  const deps: ImageDeps = { ...ports, bucket: options.bucket, uploadUrlSeconds: options.uploadUrlSeconds };
  const app = new Hono();

  // Query parameters the routes do not serve are refused, as on the CFS routes (IMS's spec defines
  // none): DELETE takes `force` (this product's); the listing checks its own (list-params.ts).
  for (const base of [IMS_IMAGES_PATH, IMS_ALIAS_PATH]) {
    for (const path of [base, `${base}/*`]) {
      app.use(path, async (c, next) => {
        // `${base}/*` matches `base` itself too: the request's path says whether this is the listing.
        const listing = c.req.path.replace(/\/+$/, '') === base && (c.req.method === 'GET' || c.req.method === 'HEAD');
        if (!listing) assertQueryParams(c, c.req.method === 'DELETE' ? ['force'] : []);
        await next();
      });
    }
  }

  for (const base of [IMS_IMAGES_PATH, IMS_ALIAS_PATH]) {
    app.get(base, async (c) => {
      const page = await listImagePage(deps, c.req.queries(), { measure: (image) => JSON.stringify(toImageView(image)).length + 1 });
      if (page.next !== undefined) c.header('Link', `${nextLink(c.req.queries(), page.next)}${page.stoppedEarly ? '; search_stopped_early="true"' : ''}`);
      return c.json(page.images.map(toImageView));
    });
    app.post(base, async (c) => c.json(toImageView(await createImage(deps, await readJson(c))), 201));
    app.all(base, (c) => methodNotAllowed(c, 'GET, POST'));

    app.get(`${base}/:id`, async (c) => c.json(toImageView(await getImage(deps, c.req.param('id')))));
    app.patch(`${base}/:id`, async (c) => c.json(toImageView(await patchImage(deps, c.req.param('id'), await readJson(c)))));
    app.delete(`${base}/:id`, async (c) => {
      await deleteImage(deps, c.req.param('id'), { force: isTrue(c.req.query('force')) });
      return c.body(null, 204);
    });
    app.all(`${base}/:id`, (c) => methodNotAllowed(c, 'GET, PATCH, DELETE'));
  }

  app.post(`${IMS_IMAGES_PATH}/:id/artifacts/:artifact/upload-url`, async (c) =>
    c.json(await artifactUploadUrl(deps, c.req.param('id'), c.req.param('artifact'), await readJson(c, true))),
  );
  app.post(`${IMS_IMAGES_PATH}/:id/artifacts/:artifact/download-url`, async (c) =>
    c.json(await artifactDownloadUrl(deps, c.req.param('id'), c.req.param('artifact'), await readJson(c, true))),
  );
  app.put(`${IMS_IMAGES_PATH}/:id/manifest`, async (c) =>
    c.json(toImageView(await registerUploadedArtifacts(deps, c.req.param('id'), await readJson(c)))),
  );
  app.get(`${IMS_IMAGES_PATH}/:id/manifest`, async (c) => c.json(await getImageManifest(deps, c.req.param('id'))));
  mountMultipartRoutes(app, deps);
  return app;
}

/** A store that cannot hold what is asked (the embedded store's full disk) answers 507. */
async function withinStorage<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'CFS_NO_SPACE' || code === 'ENOSPC') throw new HttpProblem(507, (error as Error).message);
    throw error;
  }
}

/**
 * Multipart uploads of one artifact (any size the store holds; see core/images/multipart.ts),
 * under the same rules as upload-url: staged, promoted and verified by the manifest
 * registration, refused (409) once the image has a manifest.
 *
 * - `POST {images}/{id}/artifacts/{name}/multipart` `{size, part_size?}`: `{upload_id, part_size, part_count, ...}` (201).
 * - `POST .../multipart/{upload_id}/parts` `{parts: [{number, sha256}], expires_in?}` (at most 100):
 *   `{parts: [{number, method, url, headers}]}`, each URL taking only bytes that hash to its sha256.
 * - `GET .../multipart/{upload_id}`: the parts received (number, size, sha256), for resuming.
 * - `POST .../multipart/{upload_id}/complete` `{parts: [{number, sha256}]}`: joins them into the staging key.
 * - `DELETE .../multipart/{upload_id}`: drops the upload (204).
 */
function mountMultipartRoutes(app: Hono, deps: ImageDeps): void {
  const base = `${IMS_IMAGES_PATH}/:id/artifacts/:artifact/multipart`;
  const at = (c: Context) => [deps, c.req.param('id')!, c.req.param('artifact')!] as const;
  app.post(base, async (c) => c.json(await withinStorage(async () => startMultipartUpload(...at(c), await readJson(c))), 201));
  app.post(`${base}/:upload/parts`, async (c) => c.json(await multipartPartUrls(...at(c), c.req.param('upload')!, await readJson(c))));
  app.get(`${base}/:upload`, async (c) => c.json(await listMultipartUpload(...at(c), c.req.param('upload')!)));
  app.post(`${base}/:upload/complete`, async (c) => c.json(await withinStorage(async () => completeMultipartUpload(...at(c), c.req.param('upload')!, await readJson(c)))));
  app.delete(`${base}/:upload`, async (c) => {
    await abortMultipartUpload(...at(c), c.req.param('upload')!);
    return c.body(null, 204);
  });
}
