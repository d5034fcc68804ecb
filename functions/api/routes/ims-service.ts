import { Hono } from 'hono';
import { checkServiceHealth } from '../../core/service/service-health.ts';
import { SERVICE_VERSION_STRING } from '../../core/service/service-version.ts';
import type { AppPorts } from '../../ports/index.ts';
import { allowOnly, assertQueryParams } from '../route-helpers.ts';
import { notServed } from './cfs-service.ts';
import { IMS_IMAGES_PATH } from './ims-images.ts';

export const IMS_READY_PATH = '/apis/ims/healthz/ready';
export const IMS_LIVE_PATH = '/apis/ims/healthz/live';
export const IMS_VERSION_PATH = '/apis/ims/version';

/** IMS resources refused by design, each with the one line that names it (the unversioned aliases answer the same). */
export const IMS_REFUSALS: Record<string, string> = {
  jobs: 'IMS jobs (create and customize jobs in IMS pods) are not part of this product: images are customized by CFS image sessions (POST /apis/cfs/v3/sessions with target.definition image)',
  recipes: 'IMS recipes (building images from Kiwi-NG recipes) are not part of this product: it customizes images registered with IMS v3 images',
  'public-keys': 'IMS public keys (SSH access to IMS job pods) are not part of this product: there are no job pods to reach; a failed session keeps its workspace with debug_on_failure',
  'remote-build-nodes': 'IMS remote build nodes are not part of this product: sessions run on this server (or, in AWS, as ECS tasks)',
  deleted: "IMS deleted resources (soft delete and undelete) are not part of this product: deleting an image removes it; there is nothing to list or restore",
};

/** IMS v2 (`/apis/ims/v2/...`): the one line a v2 client gets. */
export const IMS_V2_REFUSAL = 'IMS v2 is not part of this product: use IMS v3 (/apis/ims/v3/images)';

/**
 * IMS's health and version routes (mounted at `/`), as ims-openapi.yaml gives them:
 * - `GET /apis/ims/healthz/ready`: `{}` (200) when the stores answer, else 500 naming them;
 * - `GET /apis/ims/healthz/live`: `{}` (200): the process answers;
 * - `GET /apis/ims/version`: this product's release as a JSON string (`cray ims version list`);
 * the 405s of the image artifact routes (which ims-images.ts serves), and the IMS resources
 * refused by design (jobs, recipes, public keys, remote build nodes, deleted resources, v2),
 * each a one-line 404.
 */
export function imsServiceRoutes(ports: AppPorts): Hono {
  const r = new Hono();
  r.get(IMS_READY_PATH, async (c) => {
    assertQueryParams(c, []);
    const health = await checkServiceHealth(ports, { storesOnly: true });
    return health.healthy ? c.json({}, 200) : c.json({ stores: health.stores }, 500);
  });
  r.get(IMS_LIVE_PATH, (c) => {
    assertQueryParams(c, []);
    return c.json({}, 200);
  });
  r.get(IMS_VERSION_PATH, (c) => {
    assertQueryParams(c, []);
    return c.json(SERVICE_VERSION_STRING, 200);
  });
  for (const path of [IMS_READY_PATH, IMS_LIVE_PATH, IMS_VERSION_PATH]) allowOnly(r, path, ['GET']);

  // Served by ims-images.ts for their one method each; every other method is a 405 here.
  allowOnly(r, `${IMS_IMAGES_PATH}/:id/artifacts/:artifact/upload-url`, ['POST']);
  allowOnly(r, `${IMS_IMAGES_PATH}/:id/artifacts/:artifact/download-url`, ['POST']);
  allowOnly(r, `${IMS_IMAGES_PATH}/:id/manifest`, ['GET', 'PUT']);

  for (const [resource, refusal] of Object.entries(IMS_REFUSALS)) {
    for (const base of [`/apis/ims/v3/${resource}`, `/apis/ims/${resource}`]) {
      r.all(base, notServed(refusal));
      r.all(`${base}/*`, notServed(refusal));
    }
  }
  r.all('/apis/ims/v2', notServed(IMS_V2_REFUSAL));
  r.all('/apis/ims/v2/*', notServed(IMS_V2_REFUSAL));
  return r;
}
