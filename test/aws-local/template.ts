import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cdkJsonContext } from '../../lib/cdk-context.ts';
import { stackSettingsFromContext } from '../../lib/settings.ts';
import { CfsStack } from '../../lib/stacks/cfs-stack.ts';
import { ensureLambdaBundles } from '../infra/lambda-bundles.ts';

/** The account the stand-ins pretend to be: every ARN the template resolves to is in it. */
export const REGION = 'us-east-1';
export const ACCOUNT = '000000000000';
const PSEUDO: Record<string, string> = { 'AWS::Region': REGION, 'AWS::AccountId': ACCOUNT, 'AWS::Partition': 'aws', 'AWS::URLSuffix': 'amazonaws.com', 'AWS::StackName': 'CfsTest' };

type Resource = { Type: string; Properties?: Record<string, unknown> };

/** One Lambda function of the template, as the stand-in runs it. */
export interface TemplateFunction {
  logicalId: string;
  arn: string;
  name: string;
  /** The staged asset directory in the synthesized cloud assembly (a copy of dist/lambda/<entry>/). */
  codeDir: string;
  handler: string;
  timeoutSeconds: number;
  memorySize: number;
  environment: Record<string, string>;
}

export interface TemplateRule {
  logicalId: string;
  /** The bus the rule listens on: `default` when the template names none. */
  busName: string;
  pattern: Record<string, unknown>;
  targets: { arn: string; input?: string }[];
}

/** The runner's task definition: what RunTask starts. */
export interface TemplateTaskDefinition {
  arn: string;
  containerName: string;
  environment: Record<string, string>;
  privileged: boolean;
  /** Linux capabilities added and dropped over Docker's defaults. */
  capabilities: { add: string[]; drop: string[] };
  requiresCompatibilities: string[];
  stopTimeoutSeconds: number;
}

/** The synthesized stack, every intrinsic function resolved to the stand-in account's names. */
export interface DeployedShape {
  template: Record<string, unknown>;
  /** The state machine definition with its DefinitionSubstitutions applied, as Step Functions would store it. */
  definition: Record<string, unknown>;
  stateMachineArn: string;
  functions: TemplateFunction[];
  rules: TemplateRule[];
  taskDefinition: TemplateTaskDefinition;
  clusterArn: string;
  tableName: string;
  bucketName: string;
  busName: string;
  /** The API's Lambda (behind API Gateway's proxy resources). */
  apiFunctionArn: string;
  dispose(): void;
}

/** A resource's name in the stand-in account: its logical ID (lower case where AWS requires it). */
function physicalName(logicalId: string, resource: Resource): string {
  const props = resource.Properties ?? {};
  for (const key of ['FunctionName', 'TableName', 'BucketName', 'Name', 'StateMachineName', 'ClusterName', 'QueueName', 'RoleName']) {
    if (typeof props[key] === 'string') return props[key] as string;
  }
  return resource.Type === 'AWS::S3::Bucket' ? logicalId.toLowerCase() : logicalId;
}

/** Resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub and Fn::Select the way CloudFormation would, to the stand-in names. */
export function intrinsicResolver(resources: Record<string, Resource>) {
  const arnOf = (id: string, attribute: string): string => {
    const resource = resources[id];
    if (!resource) throw new Error(`the template has no resource ${id}`);
    const name = physicalName(id, resource);
    if (attribute === 'GroupId') return `sg-${id.toLowerCase()}`;
    if (attribute !== 'Arn') throw new Error(`Fn::GetAtt ${id}.${attribute} is not resolved by the stand-in`);
    switch (resource.Type) {
      case 'AWS::Lambda::Function':
        return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
      case 'AWS::ECS::Cluster':
        return `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${name}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${ACCOUNT}:role/${name}`;
      case 'AWS::SQS::Queue':
        return `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`;
      case 'AWS::Events::EventBus':
        return `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${name}`;
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${name}`;
      case 'AWS::DynamoDB::Table':
        return `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${name}`;
      case 'AWS::SecretsManager::Secret':
        return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}`;
      default:
        return `arn:aws:${resource.Type.split('::')[1]!.toLowerCase()}:${REGION}:${ACCOUNT}:${name}`;
    }
  };
  const ref = (id: string): string => {
    if (id in PSEUDO) return PSEUDO[id]!;
    const resource = resources[id];
    if (!resource) throw new Error(`the template has no resource ${id}`);
    const name = physicalName(id, resource);
    switch (resource.Type) {
      case 'AWS::ECS::TaskDefinition':
        return `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${String(resource.Properties?.Family ?? id)}:1`;
      case 'AWS::EC2::Subnet':
        return `subnet-${id.toLowerCase()}`;
      case 'AWS::SQS::Queue':
        return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}`;
      case 'AWS::StepFunctions::StateMachine':
        return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${name}`;
      case 'AWS::SecretsManager::Secret':
      case 'AWS::SNS::Topic':
        return arnOf(id, 'Arn');
      default:
        return name;
    }
  };
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (typeof value !== 'object' || value === null) return value;
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object);
    if (keys.length === 1) {
      const [key] = keys as [string];
      const argument = object[key];
      if (key === 'Ref') return ref(argument as string);
      if (key === 'Fn::GetAtt') {
        const [id, attribute] = argument as [string, string];
        return arnOf(id, attribute);
      }
      if (key === 'Fn::Join') {
        const [separator, parts] = argument as [string, unknown[]];
        return (resolve(parts) as unknown[]).join(separator);
      }
      if (key === 'Fn::Select') {
        const [index, list] = argument as [number, unknown[]];
        return (resolve(list) as unknown[])[Number(index)];
      }
      if (key === 'Fn::Sub') {
        const [text, variables] = typeof argument === 'string' ? [argument, {}] : (argument as [string, Record<string, unknown>]);
        const resolvedVariables = resolve(variables) as Record<string, string>;
        return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
          if (name in resolvedVariables) return resolvedVariables[name]!;
          const [id, attribute] = name.split('.') as [string, string | undefined];
          return attribute ? arnOf(id, attribute) : ref(id);
        });
      }
      if (key.startsWith('Fn::')) throw new Error(`${key} is not resolved by the stand-in`);
    }
    return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, resolve(v)]));
  };
  return { resolve, ref, arnOf };
}

function onlyOne(resources: Record<string, Resource>, type: string, prefix = ''): [string, Resource] {
  const found = Object.entries(resources).filter(([id, r]) => r.Type === type && id.startsWith(prefix));
  if (found.length !== 1) throw new Error(`expected one ${type} ${prefix}*, found ${found.map(([id]) => id).join(', ') || 'none'}`);
  return found[0]!;
}

/**
 * Synthesizes the stack in-process as `cdk synth` does (cdk.json's context plus `overrides`)
 * into a temporary cloud assembly kept until `dispose`, and reads what AWS would deploy from
 * the template: the definition after its substitutions, each function's staged bundle and
 * environment, the rules, the runner's task definition.
 */
export function deployedShape(overrides: Record<string, string> = {}): DeployedShape {
  ensureLambdaBundles();
  const outdir = mkdtempSync(join(tmpdir(), 'cfs-aws-local-cdk-'));
  const app = new App({ outdir, context: cdkJsonContext(overrides) });
  const stack = new CfsStack(app, 'CfsTest', { settings: stackSettingsFromContext(app.node) });
  const template = Template.fromStack(stack).toJSON() as { Resources: Record<string, Resource> };
  app.synth();
  const resources = template.Resources;
  const { resolve, ref, arnOf } = intrinsicResolver(resources);

  const [machineId, machine] = onlyOne(resources, 'AWS::StepFunctions::StateMachine');
  const substitutions = resolve(machine.Properties!.DefinitionSubstitutions ?? {}) as Record<string, string>;
  const definitionText = (resolve(machine.Properties!.DefinitionString) as string).replace(/\$\{([A-Za-z0-9]+)\}/g, (whole, name: string) => {
    if (!(name in substitutions)) throw new Error(`the definition's placeholder ${whole} has no substitution in the template`);
    return substitutions[name]!;
  });

  const functions = Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
    .map(([logicalId, r]): TemplateFunction => {
      const props = r.Properties!;
      const key = (props.Code as { S3Key: string }).S3Key;
      const codeDir = join(outdir, `asset.${key.replace(/\.zip$/, '')}`);
      if (!existsSync(join(codeDir, 'index.mjs'))) throw new Error(`${logicalId}: its staged bundle ${codeDir}/index.mjs is missing`);
      return {
        logicalId,
        arn: arnOf(logicalId, 'Arn'),
        name: ref(logicalId),
        codeDir,
        handler: props.Handler as string,
        timeoutSeconds: Number(props.Timeout ?? 3),
        memorySize: Number(props.MemorySize ?? 128),
        environment: resolve((props.Environment as { Variables?: unknown } | undefined)?.Variables ?? {}) as Record<string, string>,
      };
    });

  const rules = Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::Events::Rule' && r.Properties?.EventPattern)
    .map(([logicalId, r]): TemplateRule => {
      const props = resolve(r.Properties) as { EventBusName?: string; EventPattern: Record<string, unknown>; Targets?: { Arn: string; Input?: string }[]; State?: string };
      return {
        logicalId,
        busName: props.EventBusName ?? 'default',
        pattern: props.EventPattern,
        targets: (props.Targets ?? []).map((t) => ({ arn: t.Arn, ...(t.Input ? { input: t.Input } : {}) })),
      };
    });

  const [taskId, task] = onlyOne(resources, 'AWS::ECS::TaskDefinition', 'Runner');
  const taskProps = resolve(task.Properties) as {
    ContainerDefinitions: { Name: string; Environment?: { Name: string; Value: string }[]; Privileged?: boolean; LinuxParameters?: { Capabilities?: { Add?: string[]; Drop?: string[] } }; StopTimeout?: number }[];
    RequiresCompatibilities?: string[];
  };
  const container = taskProps.ContainerDefinitions[0]!;
  const [clusterId] = onlyOne(resources, 'AWS::ECS::Cluster');
  const [tableId] = onlyOne(resources, 'AWS::DynamoDB::Table');
  const bucketId = (functions[0]!.environment.ARTIFACT_BUCKET ?? '').length ? Object.keys(resources).find((id) => ref(id) === functions[0]!.environment.ARTIFACT_BUCKET)! : '';
  const [busId] = onlyOne(resources, 'AWS::Events::EventBus');
  const [, apiMethod] = onlyOne(resources, 'AWS::ApiGateway::Method', 'ApiproxyANY');
  const apiUri = JSON.stringify(resolve((apiMethod.Properties!.Integration as { Uri: unknown }).Uri));
  const apiFunction = functions.find((f) => apiUri.includes(`${f.arn}/invocations`));
  if (!apiFunction) throw new Error("cannot find the Lambda behind the API's proxy resource");

  return {
    template,
    definition: JSON.parse(definitionText) as Record<string, unknown>,
    stateMachineArn: ref(machineId),
    functions,
    rules,
    taskDefinition: {
      arn: ref(taskId),
      containerName: container.Name,
      environment: Object.fromEntries((container.Environment ?? []).map((e) => [e.Name, e.Value])),
      privileged: container.Privileged === true,
      capabilities: { add: container.LinuxParameters?.Capabilities?.Add ?? [], drop: container.LinuxParameters?.Capabilities?.Drop ?? [] },
      requiresCompatibilities: taskProps.RequiresCompatibilities ?? [],
      stopTimeoutSeconds: container.StopTimeout ?? 30,
    },
    clusterArn: arnOf(clusterId, 'Arn'),
    tableName: ref(tableId),
    bucketName: ref(bucketId),
    busName: ref(busId),
    apiFunctionArn: apiFunction.arn,
    dispose: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

/** The runner image's own ENV lines (functions/runner/Dockerfile): the container starts with them under the task definition's. */
export function runnerImageEnvironment(dockerfile: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(dockerfile, 'utf8').split('\n')) {
    const match = /^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=(\S*)\s*$/.exec(line);
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}
