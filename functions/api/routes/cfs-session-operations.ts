import { Hono } from 'hono';
import { heldRun, releaseDebugHold } from '../../core/sessions/debug-hold.ts';
import { readSessionLogs } from '../../core/sessions/logs.ts';
import { sessionToV3 } from '../../core/sessions/session-conversion.ts';
import type { AppPorts } from '../../ports/index.ts';
import { allowOnly, assertQueryParams, json } from '../route-helpers.ts';

/**
 * This product's session operations (v3 only, mounted at `/apis/cfs`):
 * - `GET /v3/sessions/{name}/logs?cursor=&layer=&max_bytes=`: the Ansible logs from a cursor,
 *   `{text, cursor, complete, layers}`; a client follows a running session by polling with the
 *   cursor it got (no long-lived request, so it works behind API Gateway's 29 s limit too);
 * - `POST /v3/sessions/{name}/release`: ends a failed session's debug hold now (the kept
 *   workspace is removed) and answers the session;
 * - `GET /v3/sessions/{name}/debug`: what `cfs sessions debug` builds a held session's enter
 *   and rerun commands from (the held workspace and the run document, without clone URLs).
 */
export function cfsSessionOperationRoutes(ports: AppPorts): Hono {
  const r = new Hono();
  r.get('/v3/sessions/:name/logs', async (c) => {
    assertQueryParams(c, ['cursor', 'layer', 'max_bytes']);
    const chunk = await readSessionLogs(ports, c.req.param('name'), { cursor: c.req.query('cursor'), layer: c.req.query('layer'), max_bytes: c.req.query('max_bytes') });
    return json(c, 200, chunk);
  });
  r.post('/v3/sessions/:name/release', async (c) => {
    assertQueryParams(c, []);
    return json(c, 200, sessionToV3(await releaseDebugHold(ports, c.req.param('name'))));
  });
  r.get('/v3/sessions/:name/debug', async (c) => {
    assertQueryParams(c, []);
    return json(c, 200, await heldRun(ports, c.req.param('name')));
  });
  allowOnly(r, '/v3/sessions/:name/logs', ['GET']);
  allowOnly(r, '/v3/sessions/:name/debug', ['GET']);
  allowOnly(r, '/v3/sessions/:name/release', ['POST']);
  return r;
}
