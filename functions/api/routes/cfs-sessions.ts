import { Hono } from 'hono';
import { ValidationError } from '../../core/errors.ts';
import type { SessionRecord } from '../../core/model/session.ts';
import { renameErrorFieldToV2, sessionToV2, sessionToV3, v2RequestToV3 } from '../../core/sessions/session-conversion.ts';
import { v2SessionCreateSchema } from '../../core/sessions/session-schemas.ts';
import { deleteSessionsByFilter } from '../../core/sessions/bulk-delete.ts';
import { listSessionPage, listSessionsV2 } from '../../core/sessions/list-sessions.ts';
import { createSession, deleteSession, getSession } from '../../core/sessions/session-use-cases.ts';
import { parseOrThrow } from '../../core/sessions/validation.ts';
import type { AppPorts } from '../../ports/index.ts';
import { withRunnerLayers } from '../../steps/layer-progress.ts';
import { HttpProblem } from '../http-problem.ts';
import { readJsonObject } from '../json-body.ts';
import { allowOnly, assertQueryParams, json } from '../route-helpers.ts';

/** Runs a v2 handler so that validation errors name the v2 (camelCase) field. */
async function asV2<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ValidationError) throw renameErrorFieldToV2(error);
    throw error;
  }
}

/**
 * A session whose Ansible step runs, with each layer as the runner last reported it. In AWS
 * nothing copies the runner's progress into the record until the run ends; on one machine the
 * engine already has, and this changes nothing. The stored record is not written.
 */
async function describedSession(ports: AppPorts, name: string): Promise<SessionRecord> {
  const record = await getSession(ports, name);
  if (!record.status.steps?.some((s) => s.name === 'ansible' && s.layer === undefined && s.state === 'running')) return record;
  return (await withRunnerLayers(ports, record.name))(record);
}

/**
 * CFS sessions under CSM's gateway paths (mounted at `/apis/cfs`): v3 (snake_case, create
 * 201) and v2 (camelCase, create 200). Parse, call one use case, map the result.
 */
export function cfsSessionRoutes(ports: AppPorts): Hono {
  const r = new Hono();

  r.get('/v3/sessions', async (c) => {
    const page = await listSessionPage(ports, c.req.queries());
    return json(c, 200, { sessions: page.sessions.map(sessionToV3), next: page.next });
  });
  r.delete('/v3/sessions', async (c) => json(c, 200, { session_ids: await deleteSessionsByFilter(ports, c.req.queries(), 'v3') }));
  r.post('/v3/sessions', async (c) => {
    assertQueryParams(c, []);
    const record = await createSession(ports, await readJsonObject(c));
    return json(c, 201, sessionToV3(record));
  });
  r.get('/v3/sessions/:name', async (c) => json(c, 200, sessionToV3(await describedSession(ports, c.req.param('name')))));
  r.delete('/v3/sessions/:name', async (c) => {
    await deleteSession(ports, c.req.param('name'));
    return c.body(null, 204);
  });

  r.get('/v2/sessions', async (c) => json(c, 200, (await listSessionsV2(ports, c.req.queries())).map(sessionToV2)));
  r.delete('/v2/sessions', async (c) => {
    await deleteSessionsByFilter(ports, c.req.queries(), 'v2');
    return c.body(null, 204);
  });
  r.post('/v2/sessions', async (c) => {
    assertQueryParams(c, []);
    const body = await readJsonObject(c);
    // The body's own tags go along: the v2 schema's record leaves a `__proto__` key out.
    const record = await asV2(() => createSession(ports, { ...v2RequestToV3(parseOrThrow(v2SessionCreateSchema, body)), tags: (body as { tags?: unknown }).tags ?? {} }));
    return json(c, 200, sessionToV2(record));
  });
  r.get('/v2/sessions/:name', async (c) => json(c, 200, sessionToV2(await describedSession(ports, c.req.param('name')))));
  r.delete('/v2/sessions/:name', async (c) => {
    await deleteSession(ports, c.req.param('name'));
    return c.body(null, 204);
  });

  for (const v of ['v2', 'v3']) {
    // CFS's PATCH is its operator's status write: here only the workflow writes a session's status.
    r.all(`/${v}/sessions/:name`, (c, next) => {
      if (c.req.method !== 'PATCH') return next();
      throw new HttpProblem(405, "PATCH on a session is not served: a session's status is written by this service's workflow only; delete the session to stop it", undefined, { Allow: 'GET, DELETE, HEAD' });
    });
    allowOnly(r, `/${v}/sessions`, ['GET', 'POST', 'DELETE']);
    allowOnly(r, `/${v}/sessions/:name`, ['GET', 'DELETE']);
  }
  return r;
}
