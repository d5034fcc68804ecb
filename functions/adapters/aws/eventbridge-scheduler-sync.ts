import { CreateScheduleCommand, DeleteScheduleCommand, UpdateScheduleCommand, type CreateScheduleCommandInput, type SchedulerClient } from '@aws-sdk/client-scheduler';
import type { AutomationRecord } from '../../core/automations/automation-record.ts';
import type { AutomationScheduleSync } from '../../ports/automation-store.ts';
import { errorName, rethrowSdkError } from './sdk-errors.ts';

const TRANSIENT = new Set(['ThrottlingException', 'InternalServerException', 'ServiceQuotaExceededException', 'TimeoutError']);

function translate(error: unknown, what: string): never {
  return rethrowSdkError(error, TRANSIENT, 'EventBridge Scheduler', what);
}

/** Where the schedules go and what they invoke (all from the stack, through the environment). */
export interface SchedulerSyncSettings {
  /** The product's own schedule group (the API role's rights are limited to it). */
  groupName: string;
  /** The trigger Lambda's ARN: each schedule invokes it with `{"automation": name}`. */
  targetArn: string;
  /** The role Scheduler assumes to invoke the target (the API role may pass exactly this one). */
  roleArn: string;
  /** Where a schedule's invocation goes when its retries are spent. */
  deadLetterArn?: string;
}

/**
 * The AWS side of AutomationScheduleSync: one EventBridge Scheduler schedule per automation,
 * named after it, in the product's schedule group. The expression and time zone are passed as
 * the automation gives them (they are written in Scheduler's own syntax). Arming updates the
 * schedule, or creates it when there is none yet; disarming deletes it (none is fine).
 */
export class EventBridgeSchedulerSync implements AutomationScheduleSync {
  constructor(
    private readonly client: SchedulerClient,
    private readonly settings: SchedulerSyncSettings,
  ) {}

  async armed(automation: AutomationRecord): Promise<void> {
    if (!automation.schedule) {
      await this.disarmed(automation.name);
      return;
    }
    const input = this.scheduleInput(automation, automation.schedule);
    try {
      await this.client.send(new UpdateScheduleCommand(input));
      return;
    } catch (error) {
      if (errorName(error) !== 'ResourceNotFoundException') translate(error, `updating the schedule of automation '${automation.name}'`);
    }
    try {
      await this.client.send(new CreateScheduleCommand(input));
    } catch (error) {
      // Two stores of one automation raced: the other created it; ours is the newer state.
      if (errorName(error) !== 'ConflictException') translate(error, `creating the schedule of automation '${automation.name}'`);
      try {
        await this.client.send(new UpdateScheduleCommand(input));
      } catch (again) {
        translate(again, `updating the schedule of automation '${automation.name}'`);
      }
    }
  }

  async disarmed(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteScheduleCommand({ Name: name, GroupName: this.settings.groupName }));
    } catch (error) {
      if (errorName(error) !== 'ResourceNotFoundException') translate(error, `deleting the schedule of automation '${name}'`);
    }
  }

  private scheduleInput(automation: AutomationRecord, schedule: { expression: string; timezone: string }): CreateScheduleCommandInput {
    return {
      Name: automation.name,
      GroupName: this.settings.groupName,
      Description: `CFS automation '${automation.name}'`,
      ScheduleExpression: schedule.expression,
      ScheduleExpressionTimezone: schedule.timezone,
      State: 'ENABLED',
      // Exactly on time: automations on one schedule are evaluated by separate invocations anyway.
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: this.settings.targetArn,
        RoleArn: this.settings.roleArn,
        Input: JSON.stringify({ automation: automation.name }),
        // A tick is only useful near its time: the next one finds any change it would have.
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 3600 },
        ...(this.settings.deadLetterArn ? { DeadLetterConfig: { Arn: this.settings.deadLetterArn } } : {}),
      },
    };
  }
}
