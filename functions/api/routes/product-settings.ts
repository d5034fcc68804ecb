import { Hono } from 'hono';
import { PRODUCT_SETTINGS_PATH } from '../../core/options/options-schemas.ts';
import { getSettings, patchSettings } from '../../core/options/options-use-cases.ts';
import type { AppPorts } from '../../ports/index.ts';
import { readJsonObject } from '../json-body.ts';
import { allowOnly, assertQueryParams, json } from '../route-helpers.ts';

/**
 * This product's own settings (image wait, poll interval, result compression, clone URL
 * schemes), at `/apis/cfs-image/v1/settings` (mounted at `/`): outside `/apis/cfs`, so no CFS
 * client ever reads them among the options. `GET` answers every setting in force, `PATCH` sets
 * the ones the body names. Parse, call one use case, map the result.
 */
export function productSettingsRoutes(ports: AppPorts): Hono {
  const r = new Hono();
  r.get(PRODUCT_SETTINGS_PATH, async (c) => {
    assertQueryParams(c, []);
    return json(c, 200, await getSettings(ports));
  });
  r.patch(PRODUCT_SETTINGS_PATH, async (c) => {
    assertQueryParams(c, []);
    return json(c, 200, await patchSettings(ports, await readJsonObject(c)));
  });
  allowOnly(r, PRODUCT_SETTINGS_PATH, ['GET', 'PATCH']);
  return r;
}
