import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { ArtifactBucket } from './artifact-bucket.ts';
import { BundledFunction } from './bundled-function.ts';
import type { SessionTable } from './session-table.ts';

export interface AutomationTriggerProps {
  /** The product's bus: `Image Registered` (source `cfs.ims`) arrives here from the registry. */
  bus: events.IEventBus;
  environment: Record<string, string>;
  /** Where an event or a schedule tick goes when its retries are spent. */
  deadLetterQueue: sqs.IQueue;
  /** Where an invocation goes once the function failed it every time (the on-failure destination). */
  asyncFailures: sqs.IQueue;
  logRetention: logs.RetentionDays;
  table: SessionTable;
  artifacts: ArtifactBucket;
  /** The session state machine it starts executions of and wakes waits in. */
  stateMachineArn: string;
}

/**
 * The trigger Lambda (functions/handlers/trigger.ts) and what invokes it: a rule on the bus for
 * `Image Registered` (wakes waiting sessions, starts automations), and EventBridge Scheduler
 * schedules, one per automation, in a schedule group of the product's own. The API creates,
 * updates and deletes those schedules (EventBridgeSchedulerSync); they invoke the trigger through
 * a role only Scheduler may assume, for schedules of this group only.
 */
export class AutomationTrigger extends Construct {
  readonly function: BundledFunction;
  readonly rule: events.Rule;
  readonly scheduleGroup: scheduler.CfnScheduleGroup;
  readonly scheduleGroupName: string;
  /** The role each schedule's target runs with (the API passes it, and may pass only it). */
  readonly schedulerRole: iam.Role;

  constructor(scope: Construct, id: string, props: AutomationTriggerProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.function = new BundledFunction(this, 'Function', {
      entry: 'trigger',
      description: 'Image Registered and automation schedules: wakes waiting sessions, starts automations',
      memorySize: 1024,
      // One evaluation resolves every configuration branch over HTTP; well within a retry's reach.
      timeout: Duration.minutes(5),
      environment: props.environment,
      logRetention: props.logRetention,
      asyncFailures: props.asyncFailures,
    });
    const fn = this.function.function;
    // Automations, sessions, configurations, images and image waits.
    props.table.grantData(fn);
    // Image manifests (the plans read each source's rootfs checksum).
    props.artifacts.grant(fn, { read: ['boot-images'] });
    // Automations start sessions; Image Registered wakes waiting ones with their task tokens.
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StartExecution', 'states:SendTaskSuccess'], resources: [props.stateMachineArn] }));

    // Redelivery is safe (session names are deterministic, a wake of an ended wait does nothing).
    this.rule = new events.Rule(this, 'ImageRegistered', {
      eventBus: props.bus,
      description: 'Image Registered: wake the sessions waiting for the image, start the automations it matches',
      eventPattern: { source: ['cfs.ims'], detailType: ['Image Registered'] },
    });
    this.rule.addTarget(new targets.LambdaFunction(fn, { deadLetterQueue: props.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(6) }));

    this.scheduleGroupName = `${stack.stackName}-automations`;
    this.scheduleGroup = new scheduler.CfnScheduleGroup(this, 'Schedules', { name: this.scheduleGroupName });
    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      description: "EventBridge Scheduler: the automations' schedules invoke the trigger Lambda",
      // Only Scheduler, for this account's schedules in this group (the confused deputy guard:
      // Scheduler gives the schedule group's ARN as the source).
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account, 'aws:SourceArn': this.scheduleGroup.attrArn } },
      }),
    });
    this.schedulerRole.addToPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [fn.functionArn] }));
    this.schedulerRole.addToPolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [props.deadLetterQueue.queueArn] }));
  }

  /** The ARN pattern of this group's schedules (what the API may create, update and delete). */
  schedulesArn(): string {
    return Stack.of(this).formatArn({ service: 'scheduler', resource: 'schedule', resourceName: `${this.scheduleGroupName}/*`, arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
  }
}
