import { Hono } from 'hono';
import { getOptions, patchOptions } from '../../core/options/options-use-cases.ts';
import type { AppPorts } from '../../ports/index.ts';
import { readJsonObject } from '../json-body.ts';
import { allowOnly, assertQueryParams, json } from '../route-helpers.ts';

/**
 * CFS options under CSM's gateway paths (mounted at `/apis/cfs`): `GET` answers every option
 * in force, exactly V3Options' (v3, snake_case) or V2Options' (v2, camelCase) names; `PATCH`
 * sets the ones the body names. This product's own settings are not here (see
 * product-settings.ts). Parse, call one use case, map the result.
 */
export function cfsOptionsRoutes(ports: AppPorts): Hono {
  const r = new Hono();
  for (const version of ['v2', 'v3'] as const) {
    r.get(`/${version}/options`, async (c) => {
      assertQueryParams(c, []);
      return json(c, 200, await getOptions(ports, version));
    });
    r.patch(`/${version}/options`, async (c) => {
      assertQueryParams(c, []);
      return json(c, 200, await patchOptions(ports, await readJsonObject(c), version));
    });
    allowOnly(r, `/${version}/options`, ['GET', 'PATCH']);
  }
  return r;
}
