import { Duration, Stack } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge, arnRef } from '../nag.ts';
import type { ArtifactBucket } from './artifact-bucket.ts';
import { BundledFunction } from './bundled-function.ts';
import type { SessionTable } from './session-table.ts';

export interface ExecutionCleanupProps {
  stateMachineArn: string;
  environment: Record<string, string>;
  deadLetterQueue: sqs.IQueue;
  /** Where an invocation goes once the function failed it every time (the on-failure destination). */
  asyncFailures: sqs.IQueue;
  logRetention: logs.RetentionDays;
  table: SessionTable;
  artifacts: ArtifactBucket;
  bus: events.IEventBus;
  /** The runner tasks' cluster: the session's task is found and stopped there. */
  runnerCluster: ecs.ICluster;
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
      asyncFailures: props.asyncFailures,
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
    this.grant(props);
  }

  private grant(props: ExecutionCleanupProps): void {
    const fn = this.function.function;
    const cluster = props.runnerCluster;
    // The session, its results' image records and its image wait.
    props.table.grantData(fn);
    // The runner's outcome and the run document (which names a deleted session's results); staged uploads and the run document go.
    props.artifacts.grant(fn, { read: ['sessions', 'runner'], remove: ['boot-images', 'sessions', 'runner'] });
    // Session Completed, as the failure path publishes it.
    props.bus.grantPutEventsTo(fn);
    // The session's runner task: listed on the runner cluster, described and stopped there.
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['ecs:ListTasks'], resources: ['*'], conditions: { ArnEquals: { 'ecs:cluster': cluster.clusterArn } } }));
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ecs:DescribeTasks', 'ecs:StopTask'],
        resources: [Stack.of(this).formatArn({ service: 'ecs', resource: 'task', resourceName: `${cluster.clusterName}/*` })],
        conditions: { ArnEquals: { 'ecs:cluster': cluster.clusterArn } },
      }),
    );
    acknowledge(
      this.function.role,
      'AwsSolutions-IAM5[Resource::*]',
      'ecs:ListTasks has no resource type of its own (AWS accepts only "*"); the ecs:cluster condition limits it to the runner cluster.',
    );
    acknowledge(
      this.function.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/${arnRef(cluster).replace('.Arn>', '>')}/*]`,
      "A runner task's ID is known only at run time, so DescribeTasks and StopTask name the runner cluster's tasks, with the ecs:cluster condition on that cluster.",
    );
  }
}
