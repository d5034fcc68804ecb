import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import type { SchedulerClient } from '@aws-sdk/client-scheduler';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { optionDefaultsFrom, settingsReader } from '../../core/options/workflow-settings.ts';
import { RUNNER_VERSION } from '../../runner/runner-version.ts';
import { systemClock } from '../../ports/clock.ts';
import type { AppPorts } from '../../ports/index.ts';
import type { StepPorts } from '../../steps/step-ports.ts';
import type { WaitForImagesPorts } from '../../steps/wait-for-images.ts';
import type { TriggerPorts } from '../../core/automations/trigger.ts';
import { DynamoDbAutomationStore } from '../dynamodb/dynamodb-automation-store.ts';
import { DynamoDbConfigurationStore } from '../dynamodb/dynamodb-configuration-store.ts';
import { DynamoDbImageRegistry } from '../dynamodb/dynamodb-image-registry.ts';
import { DynamoDbOptionsStore } from '../dynamodb/dynamodb-options-store.ts';
import { DynamoDbSessionStore } from '../dynamodb/dynamodb-session-store.ts';
import { DynamoDbImageWaitStore } from '../dynamodb/dynamodb-image-wait-store.ts';
import { DynamoDbSourceStore } from '../dynamodb/dynamodb-source-store.ts';
import { SecretsManagerSourceSecretStore } from './secrets-manager-source-secret-store.ts';
import { EventBridgeEventPublisher } from './eventbridge-event-publisher.ts';
import { EventBridgeSchedulerSync } from './eventbridge-scheduler-sync.ts';
import { HttpGitResolver } from './http-git-resolver.ts';
import { S3ArtifactStore } from './s3-artifact-store.ts';
import { parseAwsSettings, requireSetting, type AwsSettings } from './settings.ts';
import { SfnWorkflowStarter } from './sfn-workflow-starter.ts';

/**
 * The AWS composition root: the one place that turns the environment into adapters for the
 * Lambda handlers (the embedded runtime's counterpart is functions/server/embedded-runtime.ts).
 * Settings are read and clients created once per cold start; each builder takes only the
 * settings its ports need, so a function is never given more than it uses.
 */
export interface AwsRoot {
  settings: AwsSettings;
  /** Ports of the control-plane steps: table, bucket, bus. */
  stepPorts(): StepPorts;
  /** Ports of the wait-for-images step: table, bucket and the Step Functions client (to wake itself). */
  waitPorts(): WaitForImagesPorts;
  /** Ports of the API: everything, including the workflow starter (and the schedule sync where the stack configures one). */
  appPorts(): AppPorts;
  /** Ports of the trigger Lambda (Image Registered, schedules): the API's ports with the automations store required. */
  triggerPorts(): TriggerPorts & AppPorts;
  /** The waits store and the workflow starter (the trigger wakes waiting sessions). */
  waits(): DynamoDbImageWaitStore;
  starter(): SfnWorkflowStarter;
}

/**
 * Clients only some functions need, given by their handlers so the other bundles leave those
 * SDK clients out (a static import here would put them in every Lambda bundle).
 */
export interface AwsRootClients {
  /** The API's: automations' schedules on EventBridge Scheduler. */
  scheduler?: () => SchedulerClient;
  /** The API's: CFS sources' logins in Secrets Manager. */
  secretsManager?: () => SecretsManagerClient;
}

/** Builds the root from an environment (tests pass their own; handlers use `awsRoot()`). */
export function createAwsRoot(env: Record<string, string | undefined>, clients: AwsRootClients = {}): AwsRoot {
  const settings = parseAwsSettings(env);
  const once = <T>(make: () => T): (() => T) => {
    let value: T | undefined;
    return () => (value ??= make());
  };

  const documents = once(() => {
    requireSetting(settings, 'tableName');
    return DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
  });
  const table = () => requireSetting(settings, 'tableName');
  const sessions = once(() => new DynamoDbSessionStore(documents(), table()));
  const images = once(() => new DynamoDbImageRegistry(documents(), table()));
  const waits = once(() => new DynamoDbImageWaitStore(documents(), table()));
  // The environment's workflow settings are the options' defaults; options PATCHed through the
  // API win, read again by every step.
  const options = once(() => new DynamoDbOptionsStore(documents(), table(), optionDefaultsFrom(settings.workflow)));
  const workflowSettings = once(() => settingsReader(options(), settings.workflow));
  const artifacts = once(() => {
    const bucket = requireSetting(settings, 'artifactBucket');
    // Presigned PUT URLs must not carry the SDK's default CRC32 of an empty body (S3 would
    // refuse every upload with BadDigest); checksums are the product's own md5 and sha256.
    const client = new S3Client({ requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    return new S3ArtifactStore(client, { bucket });
  });
  const events = once(() => new EventBridgeEventPublisher(new EventBridgeClient({}), requireSetting(settings, 'eventBusName')));
  const sfn = once(() => new SFNClient({}));
  const starter = once(() => {
    // The wait function only wakes (SendTaskSuccess): it needs no state machine ARN.
    const arn = settings.stateMachineArn ?? '';
    return new SfnWorkflowStarter(sfn(), arn, waits(), sessions());
  });

  const automations = once(() => new DynamoDbAutomationStore(documents(), table()));
  const sources = once(() => new DynamoDbSourceStore(documents(), table()));
  // Only the API keeps schedules in step (the stack gives it the group, target and role; its handler the client).
  const schedules = once(() =>
    settings.scheduleGroupName && clients.scheduler
      ? new EventBridgeSchedulerSync(clients.scheduler(), {
          groupName: settings.scheduleGroupName,
          targetArn: requireSetting(settings, 'scheduleTargetArn'),
          roleArn: requireSetting(settings, 'scheduleRoleArn'),
          ...(settings.scheduleDeadLetterArn ? { deadLetterArn: settings.scheduleDeadLetterArn } : {}),
        })
      : undefined,
  );
  const appPorts = once((): AppPorts => {
    requireSetting(settings, 'stateMachineArn');
    const sync = schedules();
    return {
      sessions: sessions(),
      configurations: new DynamoDbConfigurationStore(documents(), table()),
      images: images(),
      artifacts: artifacts(),
      workflow: starter(),
      events: events(),
      git: new HttpGitResolver({ allowedSchemes: settings.workflow.allowedCloneSchemes }),
      clock: systemClock,
      options: options(),
      automations: automations(),
      ...(sync ? { automationSchedules: sync } : {}),
      // Sources where the stack names their secrets' prefix (and grants the calls on it).
      ...(settings.sourceSecretPrefix && clients.secretsManager ? { sources: sources(), sourceSecrets: new SecretsManagerSourceSecretStore(clients.secretsManager(), settings.sourceSecretPrefix) } : {}),
    };
  });

  return {
    settings,
    stepPorts: once(() => ({ sessions: sessions(), images: images(), artifacts: artifacts(), events: events(), clock: systemClock, settings: workflowSettings(), sources: sources() })),
    waitPorts: once(() => ({
      images: images(),
      artifacts: artifacts(),
      clock: systemClock,
      waits: waits(),
      wake: (session: string) => starter().wake(session),
    })),
    appPorts: appPorts,
    triggerPorts: once(() => ({ ...appPorts(), automations: automations(), runnerVersion: RUNNER_VERSION })),
    waits,
    starter,
  };
}

let root: AwsRoot | undefined;

/** The process's root, from `process.env`, made on first use (a cold start) and kept. */
export function awsRoot(clients: AwsRootClients = {}): AwsRoot {
  return (root ??= createAwsRoot(process.env, clients));
}
