import { Hono, type Context } from 'hono';
import { checkServiceHealth, type ServiceHealth } from '../../core/service/service-health.ts';
import { SERVICE_VERSION } from '../../core/service/service-version.ts';
import type { AppPorts } from '../../ports/index.ts';
import { HttpProblem } from '../http-problem.ts';
import { allowOnly, assertQueryParams, json } from '../route-helpers.ts';

/** The paths that answer CFS's `Version` (`cray cfs list` sends `/apis/cfs/`, with the slash). */
export const CFS_VERSION_PATHS = ['/apis/cfs', '/apis/cfs/', '/apis/cfs/versions', '/apis/cfs/v2', '/apis/cfs/v3'];
export const CFS_HEALTHZ_PATH = '/apis/cfs/healthz';

/**
 * CFS's `Healthz` (a closed schema: only these two keys). `db_status` reports this product's
 * stores (the table and the artifact store); `kafka_status` reports its workflow engine, the
 * part that carries a session's work as Kafka carries CFS's (there is no Kafka here).
 */
export function toHealthz(health: ServiceHealth): { db_status: string; kafka_status: string } {
  return { db_status: health.stores, kafka_status: health.engine };
}

/** Refuses a CFS resource this product does not serve: one line naming the feature, a 404 problem. */
export function notServed(feature: string): (c: Context) => never {
  return () => {
    throw new HttpProblem(404, feature);
  };
}

/** What `/apis/cfs/v{2,3}/components` answers: CFS's node side is not here. */
export const CFS_COMPONENTS_REFUSAL =
  'CFS components (node configuration state) are not part of this product: it customizes IMS images with image sessions only, so there are no components to list or update';

/**
 * CFS's discovery and health routes (mounted at `/`), the ones operators run first:
 * - `GET /apis/cfs/`, `/apis/cfs/versions`, `/apis/cfs/v2`, `/apis/cfs/v3`: `Version`, this
 *   product's release (see SERVICE_VERSION: not a CFS version);
 * - `GET /apis/cfs/healthz`: `Healthz`, 200 when the stores and the workflow engine answered,
 *   503 naming the part that did not (its reason goes to the server log only: the route needs no
 *   credential);
 * and the CFS resources refused by design (components), each a one-line 404.
 */
export function cfsServiceRoutes(ports: AppPorts): Hono {
  const r = new Hono();
  for (const path of CFS_VERSION_PATHS) {
    r.get(path, (c) => {
      assertQueryParams(c, []);
      return json(c, 200, SERVICE_VERSION);
    });
    allowOnly(r, path, ['GET']);
  }
  r.get(CFS_HEALTHZ_PATH, async (c) => {
    assertQueryParams(c, []);
    const health = await checkServiceHealth(ports);
    return c.json(toHealthz(health), health.healthy ? 200 : 503);
  });
  allowOnly(r, CFS_HEALTHZ_PATH, ['GET']);
  for (const version of ['v2', 'v3']) {
    r.all(`/apis/cfs/${version}/components`, notServed(CFS_COMPONENTS_REFUSAL));
    r.all(`/apis/cfs/${version}/components/*`, notServed(CFS_COMPONENTS_REFUSAL));
  }
  return r;
}
