import { Hono } from 'hono';
import { createSource, deleteSource, getSource, listSourcePage, restoreSource, sourceToV3, updateSource, type SourcePorts } from '../../core/sources/source-use-cases.ts';
import type { AppPorts } from '../../ports/index.ts';
import { HttpProblem } from '../http-problem.ts';
import { readJsonObject } from '../json-body.ts';
import { allowOnly, assertQueryParams, invalidStateAsBadRequest, json } from '../route-helpers.ts';

/**
 * The source's name from the path. `cray` quotes it twice (a name is often a clone URL) and CFS
 * unquotes the second level itself; a name sent quoted once has no escapes left here.
 */
function sourceName(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The source ports, or a 501 where this deployment keeps no sources. */
function sourcePorts(ports: AppPorts): SourcePorts {
  if (!ports.sources || !ports.sourceSecrets) throw new HttpProblem(501, 'CFS sources are not served by this deployment');
  return { ...ports, sources: ports.sources, sourceSecrets: ports.sourceSecrets };
}

/**
 * CFS v3 sources (`/apis/cfs/v3/sources`): a clone URL with a login kept in the secret store.
 * No answer ever holds the login, only the secret's name. Deleting a source a configuration
 * names is refused with 400, the status the spec lists for this operation.
 */
export function cfsSourceRoutes(ports: AppPorts): Hono {
  const r = new Hono();
  const base = '/v3/sources';

  r.get(base, async (c) => {
    const page = await listSourcePage(sourcePorts(ports), c.req.queries());
    return json(c, 200, { sources: page.sources.map(sourceToV3), next: page.next });
  });
  r.post(base, async (c) => {
    assertQueryParams(c, []);
    const body = await readJsonObject(c);
    return json(c, 201, sourceToV3(await createSource(sourcePorts(ports), body)));
  });
  r.get(`${base}/:name`, async (c) => {
    assertQueryParams(c, []);
    return json(c, 200, sourceToV3(await getSource(sourcePorts(ports), sourceName(c.req.param('name')))));
  });
  r.patch(`${base}/:name`, async (c) => {
    assertQueryParams(c, []);
    const body = await readJsonObject(c);
    return json(c, 200, sourceToV3(await updateSource(sourcePorts(ports), sourceName(c.req.param('name')), body)));
  });
  // Restore: a record for a secret that exists already (CFS's data recovery).
  r.post(`${base}/:name`, async (c) => {
    assertQueryParams(c, []);
    const body = await readJsonObject(c);
    return json(c, 201, sourceToV3(await restoreSource(sourcePorts(ports), sourceName(c.req.param('name')), body)));
  });
  r.delete(`${base}/:name`, async (c) => {
    assertQueryParams(c, []);
    await invalidStateAsBadRequest(() => deleteSource(sourcePorts(ports), sourceName(c.req.param('name'))));
    return c.body(null, 204);
  });
  allowOnly(r, base, ['GET', 'POST']);
  allowOnly(r, `${base}/:name`, ['GET', 'PATCH', 'POST', 'DELETE']);
  return r;
}
