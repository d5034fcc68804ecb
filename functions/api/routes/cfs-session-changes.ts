import { Hono } from 'hono';
import { layerChanges } from '../../core/sessions/layer-changes.ts';
import type { AppPorts } from '../../ports/index.ts';
import { allowOnly, assertQueryParams, json } from '../route-helpers.ts';

/**
 * `GET /v3/sessions/{name}/layers/{index}/changes?image_id=` (mounted at `/apis/cfs`): what one
 * layer changed in one image (files, and packages where the root has dpkg or rpm), the report the
 * layer cache keeps under the layer's key; a 404 says why there is none (issue 19).
 */
export function cfsSessionChangesRoutes(ports: AppPorts): Hono {
  const r = new Hono();
  r.get('/v3/sessions/:name/layers/:layer_index/changes', async (c) => {
    assertQueryParams(c, ['image_id']);
    return json(c, 200, await layerChanges(ports, c.req.param('name'), c.req.param('layer_index'), c.req.query('image_id')));
  });
  allowOnly(r, '/v3/sessions/:name/layers/:layer_index/changes', ['GET']);
  return r;
}
