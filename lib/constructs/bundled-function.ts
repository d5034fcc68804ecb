import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { lambdaBundleDir } from '../bundles.ts';
import { acknowledge } from '../nag.ts';

export interface BundledFunctionProps {
  /** The handler's file name in functions/handlers/ (its bundle is dist/lambda/<entry>/index.mjs). */
  entry: string;
  description: string;
  memorySize: number;
  timeout: Duration;
  environment: Record<string, string>;
  logRetention: logs.RetentionDays;
  /**
   * For a function invoked asynchronously (EventBridge rules, Scheduler): where an invocation
   * goes, with its event, once Lambda's own retries are spent (the function threw or timed out).
   * A rule's dead-letter queue catches only events that could not be delivered, not a function
   * that failed.
   */
  asyncFailures?: sqs.IQueue;
}

/** Lambda's retries of a failed asynchronous invocation (its default, stated) and how old an event may get before it goes to the on-failure destination. */
export const ASYNC_RETRY_ATTEMPTS = 2;
export const ASYNC_MAX_EVENT_AGE = Duration.hours(6);

/**
 * One Lambda function from its prebuilt esbuild bundle (scripts/build.mjs): Node 24 on arm64
 * (the bundles are plain JavaScript), JSON logs into its own log group with a retention, and its
 * own role that may write only that log group. Every other grant is added by the stack, next to
 * the environment variable that names the resource.
 */
export class BundledFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: BundledFunctionProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    // A role of its own, without the AWS managed basic execution policy (which may write any log group).
    this.role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: `${props.entry}: its own log group and the grants the stack adds` });
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    this.function = new lambda.Function(this, 'Function', {
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromAsset(lambdaBundleDir(props.entry)),
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      environment: { POWERTOOLS_SERVICE_NAME: 'cfs', ...props.environment },
    });
    if (props.asyncFailures) {
      // The destination's grant (sqs:SendMessage on that queue) goes to this function's role.
      this.function.configureAsyncInvoke({ onFailure: new destinations.SqsDestination(props.asyncFailures), retryAttempts: ASYNC_RETRY_ATTEMPTS, maxEventAge: ASYNC_MAX_EVENT_AGE });
    }
    acknowledge(
      this.function,
      'AwsSolutions-L1',
      'Node.js 24 is the runtime this deployment is built and tested for (the bundles target node24); a newer runtime is a deliberate upgrade with its own test run.',
    );
  }
}
