import { ConflictError, NotFoundError } from '../errors.ts';
import { rfc3339 } from '../sessions/rfc3339.ts';
import type { AppPorts } from '../../ports/index.ts';
import type { AutomationScheduleSync, AutomationStore } from '../../ports/automation-store.ts';
import type { AutomationRecord, AutomationSpec } from './automation-record.ts';
import { checkAutomation } from './automation-rules.ts';

/** What the automation use cases touch; `schedules` is absent where no runtime runs schedules. */
export type AutomationPorts = Pick<AppPorts, 'configurations' | 'clock'> & {
  automations: AutomationStore;
  schedules?: AutomationScheduleSync;
};

function configurationNameOf(body: unknown): string | undefined {
  const value = (body as { configuration_name?: unknown } | null)?.configuration_name;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function fromSpec(spec: AutomationSpec): AutomationSpec {
  // Optional fields are taken from the new body only, so a PUT that drops `schedule` removes it.
  const { source, schedule, ...rest } = spec;
  return { ...rest, source: { ...source }, ...(schedule ? { schedule: { ...schedule } } : {}) };
}

/**
 * Creates or replaces an automation (PUT). The body is checked whole (see checkAutomation); a
 * replaced automation keeps its history and its last build, against which the next plan
 * explains itself. The runtime's schedule is re-armed (or disarmed) afterwards.
 */
export async function putAutomation(ports: AutomationPorts, name: string, body: unknown): Promise<AutomationRecord> {
  const configurationName = configurationNameOf(body);
  const configuration = configurationName ? await ports.configurations.get(configurationName) : undefined;
  const spec = fromSpec(checkAutomation(name, body, configuration));
  const now = rfc3339(ports.clock.now());
  const replace = (current: AutomationRecord): AutomationRecord => ({
    name,
    ...spec,
    created: current.created,
    last_updated: now,
    ...(current.last_build ? { last_build: current.last_build } : {}),
    history: current.history ?? [],
  });
  let stored: AutomationRecord;
  if (await ports.automations.get(name)) {
    stored = await ports.automations.update(name, replace);
  } else {
    const created: AutomationRecord = { name, ...spec, created: now, last_updated: now, history: [] };
    try {
      await ports.automations.create(created);
      stored = created;
    } catch (error) {
      // Another PUT of the same name got there first: replace what it stored.
      if (!(error instanceof ConflictError)) throw error;
      stored = await ports.automations.update(name, replace);
    }
  }
  await ports.schedules?.armed(stored);
  return stored;
}

/** One automation with its history; NotFoundError when missing. */
export async function getAutomation(ports: Pick<AutomationPorts, 'automations'>, name: string): Promise<AutomationRecord> {
  const record = await ports.automations.get(name);
  if (!record) throw new NotFoundError('automation', name);
  return record;
}

/** Every automation, ordered by name. */
export function listAutomations(ports: Pick<AutomationPorts, 'automations'>): Promise<AutomationRecord[]> {
  return ports.automations.list();
}

/** Deletes an automation and disarms its schedule; sessions it started are left as they are. NotFoundError when missing. */
export async function deleteAutomation(ports: AutomationPorts, name: string): Promise<void> {
  if (!(await ports.automations.delete(name))) throw new NotFoundError('automation', name);
  await ports.schedules?.disarmed(name);
}
