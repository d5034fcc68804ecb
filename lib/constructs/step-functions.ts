import { Duration } from 'aws-cdk-lib';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ArtifactAccess, ArtifactBucket } from './artifact-bucket.ts';
import { BundledFunction } from './bundled-function.ts';
import type { SessionTable } from './session-table.ts';

/** One control-plane step's Lambda: its handler, the ASL placeholder and Task state(s) it serves, and what it may touch. */
export interface StepFunctionSpec {
  /** The handler file in functions/handlers/ (and its bundle in dist/lambda/). */
  entry: string;
  /** The `${...}` placeholder of the ASL its ARN fills. */
  placeholder: string;
  /** The Task state(s) it runs (each handler module names its state too; a test compares them). */
  states: string[];
  description: string;
  memorySize: number;
  /** Below the state's TimeoutSeconds, so a slow call ends as the function's own timeout (a test checks). */
  timeoutSeconds: number;
  artifacts: ArtifactAccess;
  /** Publishes product events (Image Registered, Session Completed). */
  publishes: boolean;
}

/**
 * Every control-plane step. Artifact access follows what each step's code does: e.g. Cleanup
 * only removes under the runner's prefix, RenderInventory writes the run documents, PackageImage
 * promotes the runner's uploads and writes the manifest.
 */
export const STEP_FUNCTIONS: StepFunctionSpec[] = [
  {
    entry: 'validate-image',
    placeholder: 'ValidateImageFunctionArn',
    states: ['ValidateImages'],
    description: 'CFS ValidateImages: are all source images registered with a rootfs?',
    memorySize: 512,
    timeoutSeconds: 50,
    artifacts: { read: ['boot-images'] },
    publishes: false,
  },
  {
    entry: 'wait-for-images',
    placeholder: 'WaitForImagesFunctionArn',
    states: ['WaitForImages'],
    description: 'CFS WaitForImages: records the task token that ends the wait',
    memorySize: 256,
    timeoutSeconds: 30,
    artifacts: { read: ['boot-images'] },
    publishes: false,
  },
  {
    entry: 'stage-image',
    placeholder: 'StageImageFunctionArn',
    states: ['StageImage'],
    description: 'CFS StageImage: pins one source image and its result',
    memorySize: 512,
    timeoutSeconds: 50,
    artifacts: { read: ['boot-images'] },
    publishes: false,
  },
  {
    entry: 'render-inventory',
    placeholder: 'RenderInventoryFunctionArn',
    states: ['RenderInventory'],
    description: "CFS RenderInventory: writes the runner's run document",
    memorySize: 512,
    timeoutSeconds: 50,
    // The control-plane run document (whose runner prefix a new one replaces) and the runner's copy.
    artifacts: { read: ['sessions'], write: ['sessions', 'runner'], remove: ['runner'] },
    publishes: false,
  },
  {
    entry: 'package-and-upload',
    placeholder: 'PackageAndUploadFunctionArn',
    states: ['PackageImage'],
    // Hashing a multi-GB rootfs read back from S3 is CPU-bound: 1769 MB is one full vCPU.
    description: "CFS PackageImage: verifies the runner's upload, writes the manifest, registers the result",
    memorySize: 1769,
    timeoutSeconds: 890,
    // Promoting a result reads it under the runner's prefix, writes it under boot-images/ and removes the original;
    // the same for the layers' change sets the runner staged there, recorded under layer-cache/ (a refused one is removed).
    artifacts: { read: ['boot-images', 'sessions', 'runner', 'layer-cache'], write: ['boot-images', 'layer-cache'], remove: ['runner', 'layer-cache'] },
    publishes: true,
  },
  {
    entry: 'record-artifact',
    placeholder: 'RecordArtifactFunctionArn',
    states: ['RecordArtifacts'],
    description: "CFS RecordArtifacts: the session's artifacts and success",
    memorySize: 512,
    timeoutSeconds: 50,
    // Each layer as the runner last reported it: the run document names its progress under runner/.
    // Shown results pin their layers' cache entries (layer-cache/pins/).
    artifacts: { read: ['sessions', 'runner'], write: ['layer-cache'] },
    publishes: true,
  },
  {
    entry: 'fail-session',
    placeholder: 'FailSessionFunctionArn',
    states: ['FailSession'],
    description: "CFS FailSession: records the failure, removes the session's results",
    memorySize: 512,
    timeoutSeconds: 290,
    // A session that had committed has its results shown here: they pin their layers' cache entries.
    // The layers a failed run finished are recorded from what the runner staged (resume).
    artifacts: { read: ['boot-images', 'sessions', 'runner', 'layer-cache'], write: ['layer-cache'], remove: ['boot-images', 'runner', 'layer-cache'] },
    publishes: true,
  },
  {
    entry: 'cleanup',
    placeholder: 'CleanupFunctionArn',
    states: ['Cleanup'],
    description: 'CFS Cleanup: removes the run document',
    memorySize: 256,
    timeoutSeconds: 60,
    // The run document names the runner's prefix; its copy there and unpromoted uploads go.
    // Then the layer cache's sweep: entries read, orphans and evicted entries removed, lost markers written back.
    artifacts: { read: ['sessions', 'layer-cache'], write: ['layer-cache'], remove: ['runner', 'layer-cache'] },
    publishes: false,
  },
];

export interface StepFunctionsProps {
  environment: Record<string, string>;
  logRetention: logs.RetentionDays;
  table: SessionTable;
  artifacts: ArtifactBucket;
  bus: events.IEventBus;
  /** The session state machine, whose task tokens WaitForImages sends back. */
  stateMachineArn: string;
}

/** The step Lambdas, by entry name, each with the grants its spec names. */
export class StepFunctions extends Construct {
  readonly byEntry = new Map<string, { spec: StepFunctionSpec; function: lambda.Function }>();

  constructor(scope: Construct, id: string, props: StepFunctionsProps) {
    super(scope, id);
    for (const spec of STEP_FUNCTIONS) {
      const { function: fn } = new BundledFunction(this, spec.entry, {
        entry: spec.entry,
        description: spec.description,
        memorySize: spec.memorySize,
        timeout: Duration.seconds(spec.timeoutSeconds),
        environment: props.environment,
        logRetention: props.logRetention,
      });
      this.byEntry.set(spec.entry, { spec, function: fn });
      if (spec.entry === 'wait-for-images') {
        // Reads images, records and removes its own wait item; sends its token back when an image came early.
        props.table.grantItems(fn, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem']);
        fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:SendTaskSuccess'], resources: [props.stateMachineArn] }));
      } else {
        // Sessions, images and the options record.
        props.table.grantData(fn);
      }
      props.artifacts.grant(fn, spec.artifacts);
      if (spec.publishes) props.bus.grantPutEventsTo(fn);
    }
  }

  /** The ASL substitution of each step function's placeholder. */
  substitutions(): Record<string, string> {
    return Object.fromEntries([...this.byEntry.values()].map(({ spec, function: fn }) => [spec.placeholder, fn.functionArn]));
  }
}
