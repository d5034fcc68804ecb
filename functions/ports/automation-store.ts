import type { AutomationRecord } from '../core/automations/automation-record.ts';

/** Where automations live (the single table, beside sessions and configurations). */
export interface AutomationStore {
  /** Stores a new automation; ConflictError when the name exists (also when two creates race). */
  create(automation: AutomationRecord): Promise<void>;
  get(name: string): Promise<AutomationRecord | undefined>;
  /** Every automation, ordered by name. */
  list(): Promise<AutomationRecord[]>;
  /** Read-modify-write with optimistic locking; NotFoundError when missing. */
  update(name: string, change: (current: AutomationRecord) => AutomationRecord): Promise<AutomationRecord>;
  /** False when there was nothing to delete. */
  delete(name: string): Promise<boolean>;
}

/**
 * Keeps the runtime's timers in step with the stored schedules: the in-process cron on one
 * machine, EventBridge Scheduler schedules in AWS. Called after an automation is stored
 * (arm or re-arm its schedule, or disarm it when it has none) and after it is deleted.
 */
export interface AutomationScheduleSync {
  armed(automation: AutomationRecord): Promise<void>;
  disarmed(name: string): Promise<void>;
}
