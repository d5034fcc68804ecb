import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { BundledFunction } from './bundled-function.ts';

export interface ExecutionCleanupProps {
  stateMachineArn: string;
  environment: Record<string, string>;
  deadLetterQueue: sqs.IQueue;
  logRetention: logs.RetentionDays;
}

/** The execution statuses that skip (or outlive) the workflow's own failure path. */
export const CLEANED_UP_STATUSES = ['ABORTED', 'TIMED_OUT', 'FAILED'] as const;

/**
 * The failure path for executions that skipped it: StopExecution (a deleted session) and the
 * execution's own timeout skip every Catch, and FailSession itself may fail. A rule on the
 * default bus (where Step Functions sends status changes) for this state machine's ABORTED,
 * TIMED_OUT and FAILED executions invokes functions/handlers/execution-ended.ts, which stops the
 * runner task, records the failure and removes the staged uploads.
 */
export class ExecutionCleanup extends Construct {
  readonly function: BundledFunction;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: ExecutionCleanupProps) {
    super(scope, id);
    this.function = new BundledFunction(this, 'Function', {
      entry: 'execution-ended',
      description: 'Clean-up of stopped, timed out and failed session executions',
      memorySize: 512,
      timeout: Duration.minutes(5),
      environment: props.environment,
      logRetention: props.logRetention,
    });
    this.rule = new events.Rule(this, 'ExecutionEnded', {
      description: 'Session executions that ended without the failure path: clean up after them',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { status: [...CLEANED_UP_STATUSES], stateMachineArn: [props.stateMachineArn] },
      },
    });
    this.rule.addTarget(new targets.LambdaFunction(this.function.function, { deadLetterQueue: props.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(6) }));
  }
}
