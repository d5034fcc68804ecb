import { readFileSync } from 'node:fs';
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { aslPath } from '../../functions/core/workflow/asl-path.ts';
import { acknowledge, arnRef } from '../nag.ts';
import type { RunnerTask } from './runner-task.ts';

/** The rule Step Functions manages in the account for every `ecs:runTask.sync` task. */
export const ECS_SYNC_RULE = 'StepFunctionsGetEventsForECSTaskRule';

export interface SessionStateMachineProps {
  /** Fixed, so functions can be granted on the machine's ARN without a reference cycle. */
  stateMachineName: string;
  /** The step functions' ARN substitutions (`${...FunctionArn}`), see StepFunctions. */
  functionSubstitutions: Record<string, string>;
  functions: lambda.IFunction[];
  runner: RunnerTask;
  runnerSubnetIds: string[];
  runnerSecurityGroupId: string;
  logRetention: logs.RetentionDays;
}

/**
 * The ASL definition as deployed: the file's text, parsed; with EC2 capacity, RunAnsible asks
 * for the runner's capacity provider instead of the FARGATE launch type (and drops
 * AssignPublicIp, which only Fargate takes). Placeholders stay for the substitutions.
 */
export function deployedDefinition(capacityProviderName?: string): Record<string, unknown> {
  const definition = JSON.parse(readFileSync(aslPath(), 'utf8')) as { States: Record<string, { Parameters?: Record<string, unknown> }> };
  if (capacityProviderName) {
    const parameters = definition.States.RunAnsible?.Parameters;
    if (!parameters) throw new Error('the ASL has no RunAnsible parameters to point at the EC2 capacity provider');
    delete parameters.LaunchType;
    parameters.CapacityProviderStrategy = [{ CapacityProvider: capacityProviderName, Weight: 1 }];
    const network = (parameters.NetworkConfiguration as { AwsvpcConfiguration: Record<string, unknown> }).AwsvpcConfiguration;
    delete network.AssignPublicIp;
  }
  return definition;
}

/**
 * The session workflow on Step Functions from statemachines/image-customization.asl.json, kept
 * inline (DefinitionBody.fromString) so template tests see it, every placeholder filled by a
 * substitution, logging (all events, without execution data: inputs carry task tokens) and
 * X-Ray on. CDK infers no permissions from an ASL file, so each one is granted here explicitly.
 */
export class SessionStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  /** Every execution event (without data): the alarms count runner task timeouts in it. */
  readonly logGroup: logs.LogGroup;
  /** Every ASL placeholder and its value, as handed to CloudFormation. */
  readonly substitutions: Record<string, string>;

  constructor(scope: Construct, id: string, props: SessionStateMachineProps) {
    super(scope, id);
    const { runner } = props;
    const [subnetA, subnetB] = props.runnerSubnetIds;
    if (!subnetA || !subnetB || props.runnerSubnetIds.length !== 2) throw new Error('the ASL names exactly two runner subnets (RunnerSubnetA, RunnerSubnetB)');
    this.substitutions = {
      ...props.functionSubstitutions,
      RunnerClusterArn: runner.cluster.clusterArn,
      RunnerTaskDefinitionArn: runner.taskDefinition.taskDefinitionArn,
      RunnerSubnetA: subnetA,
      RunnerSubnetB: subnetB,
      RunnerSecurityGroupId: props.runnerSecurityGroupId,
    };

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.logGroup = logGroup;
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromString(JSON.stringify(deployedDefinition(runner.capacityProviderName))),
      definitionSubstitutions: this.substitutions,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });

    const stack = Stack.of(this);
    // Invoke exactly the step functions, by their unqualified ARNs as the ASL names them.
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: props.functions.map((fn) => fn.functionArn) }));
    // RunAnsible: run the runner's task definition in its cluster only.
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ecs:RunTask'],
        resources: [runner.taskDefinition.taskDefinitionArn],
        conditions: { ArnEquals: { 'ecs:cluster': runner.cluster.clusterArn } },
      }),
    );
    // `.sync` watches the task and stops it when the execution stops; task IDs are unknown
    // until RunTask returns, so the grant names the cluster's tasks.
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ecs:StopTask', 'ecs:DescribeTasks'],
        resources: [stack.formatArn({ service: 'ecs', resource: 'task', resourceName: `${runner.cluster.clusterName}/*` })],
        conditions: { ArnEquals: { 'ecs:cluster': runner.cluster.clusterArn } },
      }),
    );
    // RunTask hands the runner its two roles.
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({ actions: ['iam:PassRole'], resources: [runner.taskRole.roleArn, runner.executionRole.roleArn] }));
    // `.sync` learns that the task stopped through the EventBridge rule Step Functions manages.
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [stack.formatArn({ service: 'events', resource: 'rule', resourceName: ECS_SYNC_RULE })],
      }),
    );
    const role = this.stateMachine.role;
    acknowledge(
      role,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/${arnRef(runner.cluster).replace('.Arn>', '>')}/*]`,
      "A task's ID exists only once RunTask has started it, so StopTask and DescribeTasks name the runner cluster's tasks, with the ecs:cluster condition on that cluster.",
    );
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) and the log delivery set-up Step Functions performs (logs:CreateLogDelivery and friends) have no resource-level permissions: AWS offers only "*".',
    );
  }
}
