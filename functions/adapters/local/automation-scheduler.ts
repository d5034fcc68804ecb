import { Cron } from 'croner';
import type { AutomationRecord } from '../../core/automations/automation-record.ts';
import { toCronerSchedule } from '../../core/automations/schedule-expression.ts';
import type { AutomationScheduleSync } from '../../ports/automation-store.ts';

export interface AutomationSchedulerOptions {
  /** Evaluates the automations whose schedules fired together, as one evaluation (the trigger's runAutomations). */
  run: (names: string[]) => Promise<unknown>;
  /** How long ticks are gathered into one evaluation, so automations on the same schedule share their git calls. Default 250 ms. */
  batchWindowMs?: number;
  log?: (message: string, error?: unknown) => void;
}

/**
 * The embedded runtime's stand-in for EventBridge Scheduler: one croner job per automation
 * with a schedule, armed from the store at start and re-armed whenever an automation is stored
 * or deleted. Ticks that fall together are evaluated together; a tick that comes while an
 * evaluation runs waits for it (one evaluation at a time, as a schedule never overlaps itself).
 * Ticks missed while the server was down are not caught up: the next one finds any change.
 */
export class AutomationScheduler implements AutomationScheduleSync {
  private readonly jobs = new Map<string, Cron>();
  private readonly due = new Set<string>();
  private readonly batchWindowMs: number;
  private readonly log: (message: string, error?: unknown) => void;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: AutomationSchedulerOptions) {
    this.batchWindowMs = options.batchWindowMs ?? 250;
    this.log = options.log ?? ((message, error) => console.error(message, error ?? ''));
  }

  /** Arms every stored automation that has a schedule (a bad stored expression is logged, not fatal). */
  async start(automations: AutomationRecord[]): Promise<void> {
    for (const automation of automations) {
      try {
        await this.armed(automation);
      } catch (error) {
        this.log(`automation '${automation.name}': schedule not armed`, error);
      }
    }
  }

  async armed(automation: AutomationRecord): Promise<void> {
    await this.disarmed(automation.name);
    if (this.closed || !automation.schedule) return;
    const schedule = toCronerSchedule(automation.schedule.expression, automation.schedule.timezone);
    // A rate counts from when it is armed (as a new Scheduler schedule does), not from now.
    const startAt = schedule.rateSeconds !== undefined ? { startAt: new Date(Date.now() + schedule.rateSeconds * 1000) } : {};
    const job = new Cron(schedule.pattern, { ...schedule.options, ...startAt, unref: true }, () => this.tick(automation.name));
    this.jobs.set(automation.name, job);
  }

  async disarmed(name: string): Promise<void> {
    this.jobs.get(name)?.stop();
    this.jobs.delete(name);
  }

  /** When an automation's schedule fires next, if it is armed. */
  nextRun(name: string): Date | undefined {
    return this.jobs.get(name)?.nextRun() ?? undefined;
  }

  /** The names of the automations armed now. */
  armedNames(): string[] {
    return [...this.jobs.keys()].sort();
  }

  /** What a croner job calls: gathers the tick into the next evaluation. */
  tick(name: string): void {
    if (this.closed) return;
    this.due.add(name);
    this.timer ??= setTimeout(() => this.flush(), this.batchWindowMs);
  }

  private flush(): void {
    this.timer = undefined;
    this.running = this.running.then(async () => {
      const names = [...this.due].sort();
      this.due.clear();
      if (names.length === 0 || this.closed) return;
      try {
        await this.options.run(names);
      } catch (error) {
        this.log(`scheduled evaluation of ${names.join(', ')} failed`, error);
      }
    });
  }

  /** Stops every job and waits for an evaluation in progress; ticks gathered but not started are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const job of this.jobs.values()) job.stop();
    this.jobs.clear();
    await this.running;
  }
}
