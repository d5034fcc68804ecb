import { Hono, type Context } from 'hono';
import { ValidationError } from '../../core/errors.ts';
import { configurationErrorToV2, configurationToV2, configurationToV3 } from '../../core/configurations/configuration-conversion.ts';
import { deleteConfiguration, getConfiguration, patchConfiguration, putConfiguration } from '../../core/configurations/configuration-use-cases.ts';
import { listConfigurationPage, listConfigurationsV2 } from '../../core/sessions/list-sessions.ts';
import type { ConfigurationRecord } from '../../core/model/configuration.ts';
import type { AppPorts } from '../../ports/index.ts';
import { HttpProblem } from '../http-problem.ts';
import { readJsonObject } from '../json-body.ts';
import { allowOnly, assertQueryParams, invalidStateAsBadRequest, json, queryBoolean } from '../route-helpers.ts';

async function asV2<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ValidationError) throw configurationErrorToV2(error);
    throw error;
  }
}

/** Multi-tenancy is not served: a tenant header must not give the illusion of isolation. */
function refuseTenant(c: Context): void {
  const tenant = c.req.header('cray-tenant-name');
  if (tenant) throw new HttpProblem(400, `Cray-Tenant-Name: tenants are not supported by this service (got '${tenant}')`, 'Cray-Tenant-Name');
}

/**
 * CFS configurations under CSM's gateway paths (mounted at `/apis/cfs`). PUT accepts v2 or
 * v3 field names on both versions (`cray` passes files through unconverted) and resolves
 * branches with git; PATCH re-resolves them.
 */
export function cfsConfigurationRoutes(ports: AppPorts): Hono {
  const r = new Hono();

  for (const version of ['v2', 'v3'] as const) {
    const view: (record: ConfigurationRecord) => unknown = version === 'v3' ? configurationToV3 : configurationToV2;
    const guard = version === 'v3' ? <T>(work: () => Promise<T>) => work() : asV2;
    const base = `/${version}/configurations`;

    r.get(base, async (c) => {
      refuseTenant(c);
      if (version === 'v2') return json(c, 200, (await listConfigurationsV2(ports, c.req.queries())).map(view));
      const page = await listConfigurationPage(ports, c.req.queries());
      return json(c, 200, { configurations: page.configurations.map(view), next: page.next });
    });
    r.get(`${base}/:name`, async (c) => {
      refuseTenant(c);
      return json(c, 200, view(await getConfiguration(ports, c.req.param('name'))));
    });
    r.put(`${base}/:name`, async (c) => {
      assertQueryParams(c, ['drop_branches']);
      refuseTenant(c);
      const dropBranches = queryBoolean(c, 'drop_branches', false);
      const body = await readJsonObject(c);
      return json(c, 200, view(await guard(() => putConfiguration(ports, c.req.param('name'), body, { dropBranches, version }))));
    });
    r.patch(`${base}/:name`, async (c) => {
      assertQueryParams(c, []);
      refuseTenant(c);
      return json(c, 200, view(await guard(() => patchConfiguration(ports, c.req.param('name')))));
    });
    r.delete(`${base}/:name`, async (c) => {
      refuseTenant(c);
      // In use: CFS's spec answers 400 here (it lists no 409).
      await invalidStateAsBadRequest(() => deleteConfiguration(ports, c.req.param('name')));
      return c.body(null, 204);
    });
    allowOnly(r, base, ['GET']);
    allowOnly(r, `${base}/:name`, ['GET', 'PUT', 'PATCH', 'DELETE']);
  }
  return r;
}
