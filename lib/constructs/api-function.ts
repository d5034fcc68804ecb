import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { acknowledge } from '../nag.ts';
import type { ArtifactBucket } from './artifact-bucket.ts';
import type { AutomationTrigger } from './automation-trigger.ts';
import { BundledFunction } from './bundled-function.ts';
import type { SessionTable } from './session-table.ts';

export interface ApiFunctionProps {
  /** What every workflow function is told (table, bucket, bus, workflow settings). */
  environment: Record<string, string>;
  logRetention: logs.RetentionDays;
  table: SessionTable;
  artifacts: ArtifactBucket;
  bus: events.IEventBus;
  stateMachineName: string;
  stateMachineArn: string;
  /** The automations' schedules, which the API keeps in step with the automations it stores. */
  trigger: AutomationTrigger;
  scheduleDeadLetters: sqs.IQueue;
}

/** The Secrets Manager name prefix of this stack's CFS sources' logins (the API's only secrets besides the dashboard token). */
export function sourceSecretPrefix(stack: Stack): string {
  return `cfs/${stack.stackName}/sources/`;
}

/**
 * The API Lambda (functions/handlers/api.ts: the same app as the embedded server), with the
 * environment that names each resource it uses and the grant for each, side by side.
 */
export class ApiFunction extends Construct {
  readonly bundled: BundledFunction;
  readonly function: lambda.Function;

  constructor(scope: Construct, id: string, props: ApiFunctionProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.bundled = new BundledFunction(this, 'Function', {
      entry: 'api',
      description: 'CFS and IMS API (the same app as the embedded server)',
      memorySize: 1024,
      // API Gateway gives up after 29 s.
      timeout: Duration.seconds(29),
      environment: {
        ...props.environment,
        [AWS_ENV.STATE_MACHINE_ARN]: props.stateMachineArn,
        [AWS_ENV.SCHEDULE_GROUP_NAME]: props.trigger.scheduleGroupName,
        [AWS_ENV.SCHEDULE_TARGET_ARN]: props.trigger.function.function.functionArn,
        [AWS_ENV.SCHEDULE_ROLE_ARN]: props.trigger.schedulerRole.roleArn,
        [AWS_ENV.SCHEDULE_DEAD_LETTER_ARN]: props.scheduleDeadLetters.queueArn,
        [AWS_ENV.SOURCE_SECRET_PREFIX]: sourceSecretPrefix(stack),
      },
      logRetention: props.logRetention,
    });
    const api = (this.function = this.bundled.function);
    props.table.grantData(api);
    // Image records, manifests and presigned upload/download URLs (signed with this role).
    // Layer logs and live progress are read where the runner wrote them, under runner/; deleting
    // an ended session removes its documents and its runner's prefix. A layer's changes report is
    // read from the layer cache; deleting an image removes its pins and the entries built on it.
    props.artifacts.grant(api, { read: ['boot-images', 'sessions', 'runner', 'layer-cache'], write: ['boot-images'], remove: ['boot-images', 'sessions', 'runner', 'layer-cache'] });
    props.bus.grantPutEventsTo(api);
    // Creating a session starts its execution; deleting a running one stops it; /apis/cfs/healthz describes the machine.
    api.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StartExecution', 'states:DescribeStateMachine'], resources: [props.stateMachineArn] }));
    api.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['states:StopExecution'],
        resources: [stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${props.stateMachineName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
      }),
    );
    acknowledge(
      this.bundled.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${props.stateMachineName}:*]`,
      "Executions are named after sessions at run time; StopExecution is granted on this state machine's executions only.",
    );

    // CFS sources keep their git logins in Secrets Manager under the stack's own prefix: the API creates, changes,
    // reads (branch resolution) and deletes them there and nowhere else. Secret names end in a random suffix, hence the `*`.
    api.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:CreateSecret', 'secretsmanager:PutSecretValue', 'secretsmanager:GetSecretValue', 'secretsmanager:DeleteSecret'],
        resources: [stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: `${sourceSecretPrefix(stack)}*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
      }),
    );
    acknowledge(
      this.bundled.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:${sourceSecretPrefix(stack)}*]`,
      "Sources' secrets are created at run time under the stack's prefix; the grant covers that prefix only.",
    );

    // Storing and deleting automations keeps their schedules in step: exactly these calls, on this group's schedules, with the one role.
    api.addToRolePolicy(new iam.PolicyStatement({ actions: ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule'], resources: [props.trigger.schedulesArn()] }));
    api.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [props.trigger.schedulerRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
    acknowledge(
      this.bundled.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${props.trigger.scheduleGroupName}/*]`,
      "Schedules are named after automations at run time; the grant covers the product's own schedule group only.",
    );
  }
}
