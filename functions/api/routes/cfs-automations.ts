import { Hono } from 'hono';
import type { AutomationRecord } from '../../core/automations/automation-record.ts';
import { deleteAutomation, getAutomation, listAutomations, putAutomation } from '../../core/automations/automation-use-cases.ts';
import { nextRuns } from '../../core/automations/schedule-expression.ts';
import { planSession } from '../../core/automations/session-plan.ts';
import { planAutomationNow, runAutomations, type TriggerPorts } from '../../core/automations/trigger.ts';
import type { AppPorts } from '../../ports/index.ts';
import { RUNNER_VERSION } from '../../runner/runner-version.ts';
import { HttpProblem } from '../http-problem.ts';
import { readJsonObject } from '../json-body.ts';
import { allowOnly, assertQueryParams, json } from '../route-helpers.ts';

/** The ports the trigger needs, from the app's; a 501 where this deployment has no automation store. */
export function triggerPorts(ports: AppPorts): TriggerPorts {
  if (!ports.automations) throw new HttpProblem(501, 'automations are not served by this deployment');
  return { ...ports, automations: ports.automations, runnerVersion: RUNNER_VERSION };
}

/** An automation as the API shows it: the stored record and, for a cron schedule, when it fires next. */
export function automationView(record: AutomationRecord, now: Date): AutomationRecord & { next_run?: string } {
  if (!record.schedule || !record.schedule.expression.startsWith('cron(')) return record;
  try {
    const [next] = nextRuns(record.schedule.expression, record.schedule.timezone, now, 1);
    return next ? { ...record, next_run: next.toISOString() } : record;
  } catch {
    return record;
  }
}

/**
 * Automations (`/apis/cfs/v3/automations`, this product's addition to CFS v3) and session plans
 * (`POST /apis/cfs/v3/sessions/plan`). Mounted before the session routes, whose 405 for
 * `/v3/sessions/{name}` would otherwise answer a POST to `/v3/sessions/plan`.
 */
export function cfsAutomationRoutes(ports: AppPorts): Hono {
  const r = new Hono();
  const useCasePorts = () => ({ ...triggerPorts(ports), schedules: ports.automationSchedules });

  r.post('/v3/sessions/plan', async (c) => {
    assertQueryParams(c, []);
    const body = await readJsonObject(c);
    return json(c, 200, await planSession({ ...ports, runnerVersion: RUNNER_VERSION }, body));
  });
  allowOnly(r, '/v3/sessions/plan', ['POST']);

  r.get('/v3/automations', async (c) => {
    assertQueryParams(c, []);
    const now = ports.clock.now();
    return json(c, 200, { automations: (await listAutomations(useCasePorts())).map((a) => automationView(a, now)) });
  });
  r.get('/v3/automations/:name', async (c) => json(c, 200, automationView(await getAutomation(useCasePorts(), c.req.param('name')), ports.clock.now())));
  r.put('/v3/automations/:name', async (c) => {
    assertQueryParams(c, []);
    const body = await readJsonObject(c);
    return json(c, 200, automationView(await putAutomation(useCasePorts(), c.req.param('name'), body), ports.clock.now()));
  });
  r.delete('/v3/automations/:name', async (c) => {
    await deleteAutomation(useCasePorts(), c.req.param('name'));
    return c.body(null, 204);
  });
  r.get('/v3/automations/:name/plan', async (c) => {
    assertQueryParams(c, []);
    return json(c, 200, await planAutomationNow(triggerPorts(ports), c.req.param('name')));
  });
  // `run` is one evaluation exactly as a schedule tick makes it, now.
  r.post('/v3/automations/:name/run', async (c) => {
    assertQueryParams(c, []);
    const name = c.req.param('name');
    const trigger = triggerPorts(ports);
    await getAutomation(trigger, name);
    const { results, git_calls } = await runAutomations(trigger, [name], 'run');
    return json(c, 200, { ...results[0]!, git_calls });
  });
  allowOnly(r, '/v3/automations', ['GET']);
  allowOnly(r, '/v3/automations/:name', ['GET', 'PUT', 'DELETE']);
  allowOnly(r, '/v3/automations/:name/plan', ['GET']);
  allowOnly(r, '/v3/automations/:name/run', ['POST']);
  return r;
}
