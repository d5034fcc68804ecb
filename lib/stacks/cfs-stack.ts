import { ArnFormat, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { AWS_ENV } from '../../functions/adapters/aws/settings.ts';
import { ArtifactBucket } from '../constructs/artifact-bucket.ts';
import { AutomationTrigger } from '../constructs/automation-trigger.ts';
import { CfsAlarms } from '../constructs/cfs-alarms.ts';
import { ExecutionCleanup } from '../constructs/execution-cleanup.ts';
import { BundledFunction } from '../constructs/bundled-function.ts';
import { CfsApi } from '../constructs/cfs-api.ts';
import { RunnerNetwork } from '../constructs/runner-network.ts';
import { RunnerTask } from '../constructs/runner-task.ts';
import { SessionStateMachine } from '../constructs/session-state-machine.ts';
import { SessionTable } from '../constructs/session-table.ts';
import { StepFunctions } from '../constructs/step-functions.ts';
import { acknowledge, arnRef } from '../nag.ts';
import type { StackSettings } from '../settings.ts';

export interface CfsStackProps extends StackProps {
  settings: StackSettings;
}

/**
 * The whole product on AWS: the API (API Gateway, one Lambda), the session workflow (Step
 * Functions from the ASL file, one Lambda per control-plane step, the runner on ECS), the
 * table, the artifact bucket and the event bus. Each function gets its environment and its
 * grants together, here, so what a function is told about is exactly what it may use.
 */
export class CfsStack extends Stack {
  readonly table: SessionTable;
  readonly artifacts: ArtifactBucket;
  readonly bus: events.EventBus;
  readonly network: RunnerNetwork;
  readonly runner: RunnerTask;
  readonly steps: StepFunctions;
  readonly workflow: SessionStateMachine;
  readonly apiFunction: BundledFunction;
  readonly api: CfsApi;
  readonly eventDeadLetters: sqs.Queue;
  readonly trigger: AutomationTrigger;
  readonly executionCleanup: ExecutionCleanup;
  readonly alarmTopic: sns.ITopic;
  readonly alarms: CfsAlarms;

  constructor(scope: Construct, id: string, props: CfsStackProps) {
    super(scope, id, props);
    const { settings } = props;
    const logRetention = settings.logRetentionDays as logs.RetentionDays;
    if (!Object.values(logs.RetentionDays).includes(logRetention)) {
      throw new Error(`cfs:logRetentionDays must be a CloudWatch Logs retention (${Object.values(logs.RetentionDays).filter((v) => typeof v === 'number').join(', ')})`);
    }

    this.table = new SessionTable(this, 'Data');
    this.artifacts = new ArtifactBucket(this, 'Artifacts', { sessionDocumentDays: settings.sessionDocumentDays, noncurrentVersionDays: settings.noncurrentVersionDays });
    // Product events (Image Registered, Session Completed): the registry and the steps publish here.
    this.bus = new events.EventBus(this, 'Events', { description: 'CFS product events' });

    const cloneUrlSchemes = settings.cloneUrlSchemes.split(',');
    this.network = new RunnerNetwork(this, 'Network', {
      egress: settings.runnerEgress,
      allowSsh: cloneUrlSchemes.includes('ssh'),
      ecsAgentEndpoints: settings.runnerCapacity === 'ec2',
      logRetention,
    });
    this.runner = new RunnerTask(this, 'Runner', {
      network: this.network,
      capacity: settings.runnerCapacity,
      architecture: settings.runnerArchitecture,
      cpu: settings.runnerCpu,
      memoryMiB: settings.runnerMemoryMiB,
      ephemeralStorageGiB: settings.runnerEphemeralStorageGiB,
      ec2InstanceType: settings.ec2InstanceType,
      ec2MaxInstances: settings.ec2MaxInstances,
      artifactBucketName: this.artifacts.bucket.bucketName,
      logRetention,
    });
    // The runner reads source images and its run document, writes results, its outcome and logs,
    // and removes a result it could not finish.
    this.artifacts.grant(this.runner.taskRole, { read: ['boot-images', 'sessions'], write: ['boot-images', 'sessions'], remove: ['boot-images'] });

    // Named, so the functions that start or wake executions are granted on its ARN without a cycle.
    const stateMachineName = `${this.stackName}-sessions`;
    const stateMachineArn = this.formatArn({ service: 'states', resource: 'stateMachine', resourceName: stateMachineName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });

    const workflowEnvironment = {
      [AWS_ENV.TABLE_NAME]: this.table.table.tableName,
      [AWS_ENV.ARTIFACT_BUCKET]: this.artifacts.bucket.bucketName,
      [AWS_ENV.EVENT_BUS_NAME]: this.bus.eventBusName,
      [AWS_ENV.CLONE_URL_SCHEMES]: settings.cloneUrlSchemes,
      [AWS_ENV.IMAGE_WAIT_TIMEOUT_SECONDS]: String(settings.imageWaitTimeoutSeconds),
      [AWS_ENV.IMAGE_POLL_INTERVAL_SECONDS]: String(settings.imagePollIntervalSeconds),
      [AWS_ENV.RUNNER_TIMEOUT_SECONDS]: String(settings.runnerTimeoutSeconds),
    };

    this.steps = new StepFunctions(this, 'Steps', { environment: workflowEnvironment, logRetention });
    for (const { spec, function: fn } of this.steps.byEntry.values()) {
      if (spec.entry === 'wait-for-images') {
        // Reads images, records and removes its own wait item; sends its token back when an image came early.
        this.table.grantItems(fn, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem']);
        fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:SendTaskSuccess'], resources: [stateMachineArn] }));
      } else {
        // Sessions, images and the options record.
        this.table.grantData(fn);
      }
      this.artifacts.grant(fn, spec.artifacts);
      if (spec.publishes) this.bus.grantPutEventsTo(fn);
    }

    this.workflow = new SessionStateMachine(this, 'Workflow', {
      stateMachineName,
      functionSubstitutions: this.steps.substitutions(),
      functions: [...this.steps.byEntry.values()].map((s) => s.function),
      runner: this.runner,
      runnerSubnetIds: this.network.subnets.map((s) => s.subnetId),
      runnerSecurityGroupId: this.network.securityGroup.securityGroupId,
      logRetention,
    });

    // Events and schedule ticks that a target never handled (after its retries) wait here for a person.
    this.eventDeadLetters = new sqs.Queue(this, 'EventDeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.eventDeadLetters, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter queue of the EventBridge rule targets and the Scheduler schedules; its depth raises an alarm.');

    // Image Registered and the automations' schedules.
    this.trigger = new AutomationTrigger(this, 'Trigger', {
      bus: this.bus,
      environment: { ...workflowEnvironment, [AWS_ENV.STATE_MACHINE_ARN]: stateMachineArn },
      deadLetterQueue: this.eventDeadLetters,
      logRetention,
    });
    const trigger = this.trigger.function.function;
    // Automations, sessions, configurations, images and image waits.
    this.table.grantData(trigger);
    // Image manifests (the plans read each source's rootfs checksum).
    this.artifacts.grant(trigger, { read: ['boot-images'] });
    // Automations start sessions; Image Registered wakes waiting ones with their task tokens.
    trigger.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StartExecution', 'states:SendTaskSuccess'], resources: [stateMachineArn] }));

    // StopExecution, the execution's timeout and a failing FailSession skip the failure path.
    this.executionCleanup = new ExecutionCleanup(this, 'ExecutionCleanup', {
      stateMachineArn,
      environment: { ...workflowEnvironment, [AWS_ENV.RUNNER_CLUSTER]: this.runner.cluster.clusterArn },
      deadLetterQueue: this.eventDeadLetters,
      logRetention,
    });
    const cleanupFn = this.executionCleanup.function.function;
    // The session, its results' image records and its image wait.
    this.table.grantData(cleanupFn);
    // The runner's outcome and the run document (which names a deleted session's results); staged uploads and the run document go.
    this.artifacts.grant(cleanupFn, { read: ['sessions'], remove: ['boot-images', 'sessions'] });
    // Session Completed, as the failure path publishes it.
    this.bus.grantPutEventsTo(cleanupFn);
    // The session's runner task: listed on the runner cluster, described and stopped there.
    cleanupFn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['ecs:ListTasks'], resources: ['*'], conditions: { ArnEquals: { 'ecs:cluster': this.runner.cluster.clusterArn } } }),
    );
    cleanupFn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ecs:DescribeTasks', 'ecs:StopTask'],
        resources: [this.formatArn({ service: 'ecs', resource: 'task', resourceName: `${this.runner.cluster.clusterName}/*` })],
        conditions: { ArnEquals: { 'ecs:cluster': this.runner.cluster.clusterArn } },
      }),
    );
    acknowledge(
      this.executionCleanup.function.role,
      'AwsSolutions-IAM5[Resource::*]',
      'ecs:ListTasks has no resource type of its own (AWS accepts only "*"); the ecs:cluster condition limits it to the runner cluster.',
    );
    acknowledge(
      this.executionCleanup.function.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/${arnRef(this.runner.cluster).replace('.Arn>', '>')}/*]`,
      "A runner task's ID is known only at run time, so DescribeTasks and StopTask name the runner cluster's tasks, with the ecs:cluster condition on that cluster.",
    );

    this.apiFunction = new BundledFunction(this, 'ApiFunction', {
      entry: 'api',
      description: 'CFS and IMS API (the same app as the embedded server)',
      memorySize: 1024,
      // API Gateway gives up after 29 s.
      timeout: Duration.seconds(29),
      environment: {
        ...workflowEnvironment,
        [AWS_ENV.STATE_MACHINE_ARN]: stateMachineArn,
        [AWS_ENV.SCHEDULE_GROUP_NAME]: this.trigger.scheduleGroupName,
        [AWS_ENV.SCHEDULE_TARGET_ARN]: trigger.functionArn,
        [AWS_ENV.SCHEDULE_ROLE_ARN]: this.trigger.schedulerRole.roleArn,
        [AWS_ENV.SCHEDULE_DEAD_LETTER_ARN]: this.eventDeadLetters.queueArn,
      },
      logRetention,
    });
    const api = this.apiFunction.function;
    this.table.grantData(api);
    // Image records, manifests and presigned upload/download URLs (signed with this role).
    this.artifacts.grant(api, { read: ['boot-images', 'sessions'], write: ['boot-images'], remove: ['boot-images'] });
    this.bus.grantPutEventsTo(api);
    // Creating a session starts its execution; deleting a running one stops it.
    api.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [stateMachineArn] }));
    api.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['states:StopExecution'],
        resources: [this.formatArn({ service: 'states', resource: 'execution', resourceName: `${stateMachineName}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
      }),
    );
    acknowledge(
      this.apiFunction.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${stateMachineName}:*]`,
      "Executions are named after sessions at run time; StopExecution is granted on this state machine's executions only.",
    );

    // Storing and deleting automations keeps their schedules in step: exactly these calls, on this group's schedules, with the one role.
    api.addToRolePolicy(new iam.PolicyStatement({ actions: ['scheduler:CreateSchedule', 'scheduler:UpdateSchedule', 'scheduler:DeleteSchedule'], resources: [this.trigger.schedulesArn()] }));
    api.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.trigger.schedulerRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
    acknowledge(
      this.apiFunction.role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${this.trigger.scheduleGroupName}/*]`,
      "Schedules are named after automations at run time; the grant covers the product's own schedule group only.",
    );

    this.api = new CfsApi(this, 'Api', { handler: api, rateLimit: settings.apiRateLimit, burstLimit: settings.apiBurstLimit, logRetention });

    if (settings.alarmTopicArn) {
      this.alarmTopic = sns.Topic.fromTopicArn(this, 'AlarmTopic', settings.alarmTopicArn);
    } else {
      const topic = new sns.Topic(this, 'AlarmTopic', { displayName: 'CFS alarms', enforceSSL: true });
      acknowledge(
        topic,
        'AwsSolutions-SNS2',
        "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key, and the alarm messages carry no data beyond the alarms' names and states; set cfs:alarmTopicArn to use a topic with a customer managed key.",
      );
      this.alarmTopic = topic;
      new CfnOutput(this, 'AlarmTopicArn', { value: topic.topicArn, description: 'Subscribe to this topic to receive the alarms' });
    }
    this.alarms = new CfsAlarms(this, 'Alarms', {
      topic: this.alarmTopic,
      stateMachine: this.workflow.stateMachine,
      stateMachineLogs: this.workflow.logGroup,
      api: this.api.api,
      deadLetterQueues: { Events: this.eventDeadLetters },
      api5xxRatio: settings.api5xxRatio,
      runnerTimeoutSeconds: settings.runnerTimeoutSeconds,
      imageWaitTimeoutSeconds: settings.imageWaitTimeoutSeconds,
    });

    new CfnOutput(this, 'ApiUrl', { value: this.api.api.url, description: 'Set CFS_API_URL to this (the CLI signs requests with SigV4)' });
    new CfnOutput(this, 'DashboardUrl', { value: this.api.api.url, description: 'Open this in a browser for the read-only dashboard' });
    new CfnOutput(this, 'DashboardTokenSecretArn', {
      value: this.api.dashboardToken.secretArn,
      description: "The dashboard's token: aws secretsmanager get-secret-value --secret-id <this> --query SecretString --output text",
    });
    new CfnOutput(this, 'ArtifactBucketName', { value: this.artifacts.bucket.bucketName });
    new CfnOutput(this, 'TableName', { value: this.table.table.tableName });
    new CfnOutput(this, 'StateMachineArn', { value: this.workflow.stateMachine.stateMachineArn });
    new CfnOutput(this, 'RunnerClusterName', { value: this.runner.cluster.clusterName });
    new CfnOutput(this, 'ScheduleGroupName', { value: this.trigger.scheduleGroupName });
    new CfnOutput(this, 'EventDeadLetterQueueUrl', { value: this.eventDeadLetters.queueUrl });
  }
}
