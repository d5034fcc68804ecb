import type { AppPorts } from '../../ports/index.ts';
import { ACTIVE_SESSIONS, sessionsWhereAny } from '../sessions/sessions-where.ts';

/**
 * What "in use" means for a configuration here. CFS calls a configuration in use when a
 * component's desired state names it; this product has no components: configurations are run
 * by image sessions, and automations start sessions. So a configuration is in use when
 *
 * - a pending or running session names it (it is read, or about to be, by that session's
 *   workflow; a completed session pinned its layers in `status.layers` and needs it no more), or
 * - an automation names it (any automation: each can start a session at any time, by an
 *   event, a schedule or `cfs automations run`; there is no disabled automation).
 *
 * The `in_use` listing filter and the delete refusal both ask this one function. Its cost does
 * not grow with the number of completed sessions: pending and running sessions are read through
 * the store's status index, and the automations are one listing (a handful per site).
 */

/** Who uses a configuration, as a phrase: `session 'x' (running)`, `automation 'y'`. */
export type ConfigurationUser = string;

/** Every configuration in use, each with its users (sessions first, then automations, by name). */
export async function configurationsInUse(ports: Pick<AppPorts, 'sessions' | 'automations'>): Promise<Map<string, ConfigurationUser[]>> {
  const [sessions, automations] = await Promise.all([sessionsWhereAny(ports.sessions, ACTIVE_SESSIONS), ports.automations?.list() ?? []]);
  const users = new Map<string, ConfigurationUser[]>();
  const add = (name: string, user: ConfigurationUser) => users.set(name, [...(users.get(name) ?? []), user]);
  for (const session of [...sessions].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    add(session.configuration.name, `session '${session.name}' (${session.status.session.status})`);
  }
  for (const automation of automations) add(automation.configuration_name, `automation '${automation.name}'`);
  return users;
}
