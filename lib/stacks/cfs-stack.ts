import { ArnFormat, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { ApiFunction } from '../constructs/api-function.ts';
import { ArtifactBucket } from '../constructs/artifact-bucket.ts';
import { AutomationTrigger } from '../constructs/automation-trigger.ts';
import { CfsAlarms } from '../constructs/cfs-alarms.ts';
import { ExecutionCleanup } from '../constructs/execution-cleanup.ts';
import { SessionExpiry } from '../constructs/session-expiry.ts';
import { CfsApi } from '../constructs/cfs-api.ts';
import { RunnerNetwork } from '../constructs/runner-network.ts';
import { RunnerTask } from '../constructs/runner-task.ts';
import { SessionStateMachine } from '../constructs/session-state-machine.ts';
import { SessionTable } from '../constructs/session-table.ts';
import { SourceReader } from '../constructs/source-reader.ts';
import { StepFunctions } from '../constructs/step-functions.ts';
import { acknowledge } from '../nag.ts';
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
  readonly apiFunction: ApiFunction;
  readonly api: CfsApi;
  readonly eventDeadLetters: sqs.Queue;
  readonly asyncFailures: sqs.Queue;
  readonly sessionExpiry: SessionExpiry;
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
      layerNetwork: settings.runnerLayerNetwork,
      artifactBucketName: this.artifacts.bucket.bucketName,
      logRetention,
    });
    // The runner reads source images, and reads, writes and removes only under its own unguessable
    // prefix (its run document, results, outcome, progress and logs); no listing, no sessions/, no
    // write under boot-images/: PackageImage verifies its results there and promotes them. It reads
    // the layer cache but never writes it: it stages its layers' change sets under its prefix and
    // PackageImage or FailSession records them under keys they compute themselves.
    this.artifacts.grant(this.runner.taskRole, { read: ['boot-images', 'runner', 'layer-cache'], write: ['runner'], remove: ['runner'], list: false });

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
      // Every function that reads the settings (the API answers them; the sweeps apply the cap).
      [AWS_ENV.LAYER_CACHE_MAX_BYTES]: String(settings.layerCacheMaxBytes),
    };

    this.steps = new StepFunctions(this, 'Steps', {
      environment: workflowEnvironment,
      logRetention,
      table: this.table,
      artifacts: this.artifacts,
      bus: this.bus,
      stateMachineArn,
    });
    // RenderInventory alone may hand a session's runner access to that session's sources' secrets.
    new SourceReader(this, 'SourceReader', { issuer: this.steps.byEntry.get('render-inventory')!.function });

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
    // Invocations the trigger or the clean-up Lambda failed (it threw or timed out, after Lambda's
    // retries) wait here with their event for a person: the dead-letter queue above never sees them.
    this.asyncFailures = new sqs.Queue(this, 'AsyncFailures', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.asyncFailures, 'AwsSolutions-SQS3', "This queue is itself the on-failure destination of the trigger's and the execution clean-up's asynchronous invocations and of the session-expiry stream batches; its depth raises an alarm.");

    // Image Registered and the automations' schedules.
    this.trigger = new AutomationTrigger(this, 'Trigger', {
      bus: this.bus,
      environment: { ...workflowEnvironment, [AWS_ENV.STATE_MACHINE_ARN]: stateMachineArn },
      deadLetterQueue: this.eventDeadLetters,
      asyncFailures: this.asyncFailures,
      logRetention,
      table: this.table,
      artifacts: this.artifacts,
      stateMachineArn,
    });

    // StopExecution, the execution's timeout and a failing FailSession skip the failure path.
    this.executionCleanup = new ExecutionCleanup(this, 'ExecutionCleanup', {
      stateMachineArn,
      environment: { ...workflowEnvironment, [AWS_ENV.RUNNER_CLUSTER]: this.runner.cluster.clusterArn },
      deadLetterQueue: this.eventDeadLetters,
      asyncFailures: this.asyncFailures,
      logRetention,
      table: this.table,
      artifacts: this.artifacts,
      bus: this.bus,
      runnerCluster: this.runner.cluster,
    });

    // session_ttl: the table's TTL removes an expired session's record; its objects go with it.
    this.sessionExpiry = new SessionExpiry(this, 'SessionExpiry', {
      environment: workflowEnvironment,
      logRetention,
      table: this.table,
      artifacts: this.artifacts,
      failures: this.asyncFailures,
    });

    this.apiFunction = new ApiFunction(this, 'ApiFunction', {
      environment: workflowEnvironment,
      logRetention,
      table: this.table,
      artifacts: this.artifacts,
      bus: this.bus,
      stateMachineName,
      stateMachineArn,
      trigger: this.trigger,
      scheduleDeadLetters: this.eventDeadLetters,
    });
    this.api = new CfsApi(this, 'Api', { handler: this.apiFunction.function, rateLimit: settings.apiRateLimit, burstLimit: settings.apiBurstLimit, logRetention });

    this.alarmTopic = this.alarmTopicFor(settings);
    this.alarms = new CfsAlarms(this, 'Alarms', {
      topic: this.alarmTopic,
      stateMachine: this.workflow.stateMachine,
      stateMachineLogs: this.workflow.logGroup,
      api: this.api.api,
      deadLetterQueues: { Events: this.eventDeadLetters },
      asyncFunctions: { Trigger: this.trigger.function.function, ExecutionCleanup: this.executionCleanup.function.function },
      asyncFailures: this.asyncFailures,
      api5xxRatio: settings.api5xxRatio,
      runnerTimeoutSeconds: settings.runnerTimeoutSeconds,
      imageWaitTimeoutSeconds: settings.imageWaitTimeoutSeconds,
    });
    this.outputs();
  }

  /** The topic the alarms go to: the one cfs:alarmTopicArn names, else one of the stack's own. */
  private alarmTopicFor(settings: StackSettings): sns.ITopic {
    if (settings.alarmTopicArn) return sns.Topic.fromTopicArn(this, 'AlarmTopic', settings.alarmTopicArn);
    const topic = new sns.Topic(this, 'AlarmTopic', { displayName: 'CFS alarms', enforceSSL: true });
    acknowledge(
      topic,
      'AwsSolutions-SNS2',
      "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key, and the alarm messages carry no data beyond the alarms' names and states; set cfs:alarmTopicArn to use a topic with a customer managed key.",
    );
    new CfnOutput(this, 'AlarmTopicArn', { value: topic.topicArn, description: 'Subscribe to this topic to receive the alarms' });
    return topic;
  }

  /** What an operator needs after a deploy: the API's URL and the names of what the product made. */
  private outputs(): void {
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
    new CfnOutput(this, 'AsyncFailureQueueUrl', { value: this.asyncFailures.queueUrl, description: 'Events the trigger or the execution clean-up Lambda failed to handle, each with the error' });
  }
}
