import { Hono } from 'hono';
import { heldRun, releaseDebugHold } from '../../core/sessions/debug-hold.ts';
import { readSessionLogs } from '../../core/sessions/logs.ts';
import { sessionToV3 } from '../../core/sessions/session-conversion.ts';
import type { SessionRecord } from '../../core/model/session.ts';
import type { AppPorts } from '../../ports/index.ts';
import { withRunnerLayers } from '../../steps/layer-progress.ts';
import { allowOnly, assertQueryParams, json } from '../route-helpers.ts';

/**
 * A session whose runner runs, with its last report (each layer, each image's test) written in, so
 * the logs' states are live in AWS too, where nothing copies the report until the run ends. The
 * stored record is not written.
 */
async function liveSession(ports: AppPorts, name: string): Promise<SessionRecord | undefined> {
  const record = await ports.sessions.get(name);
  if (!record?.status.steps?.some((s) => s.name === 'ansible' && s.layer === undefined && s.state === 'running')) return record;
  return (await withRunnerLayers(ports, name))(record);
}

/**
 * This product's session operations (v3 only, mounted at `/apis/cfs`):
 * - `GET /v3/sessions/{name}/logs?cursor=&layer=&test=&max_bytes=`: the Ansible logs, then the
 *   image tests' logs, from a cursor, `{text, cursor, complete, layers, tests}`; a client follows
 *   a running session by polling with the cursor it got (no long-lived request, so it works
 *   behind API Gateway's 29 s limit too);
 * - `POST /v3/sessions/{name}/release`: ends a failed session's debug hold now (the kept
 *   workspace is removed) and answers the session;
 * - `GET /v3/sessions/{name}/debug`: what `cfs sessions debug` builds a held session's enter
 *   and rerun commands from (the held workspace and the run document, without clone URLs).
 */
export function cfsSessionOperationRoutes(ports: AppPorts): Hono {
  const r = new Hono();
  r.get('/v3/sessions/:name/logs', async (c) => {
    assertQueryParams(c, ['cursor', 'layer', 'test', 'max_bytes']);
    const query = { cursor: c.req.query('cursor'), layer: c.req.query('layer'), test: c.req.query('test'), max_bytes: c.req.query('max_bytes') };
    const chunk = await readSessionLogs({ sessions: { get: (name) => liveSession(ports, name) }, artifacts: ports.artifacts }, c.req.param('name'), query);
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
