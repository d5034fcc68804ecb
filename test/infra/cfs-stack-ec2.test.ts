import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT_DIR } from '../../lib/bundles.ts';
import { actionsOf, logicalId, policyStatements, resourcesOf, synthesizeStack } from './stack-fixture.ts';

// The other end of every choice: EC2 capacity, interface endpoints instead of NAT, arm64, ssh remotes.
const synthesized = synthesizeStack({
  'cfs:runnerCapacity': 'ec2',
  'cfs:runnerEgress': 'endpoints',
  'cfs:runnerLayerNetwork': 'none',
  'cfs:runnerArchitecture': 'arm64',
  'cfs:cloneUrlSchemes': 'https,ssh',
  'cfs:runnerEphemeralStorageGiB': '150',
  'cfs:alarmTopicArn': 'arn:aws:sns:eu-west-1:123456789012:ops-alarms',
});
const { template } = synthesized;
afterAll(() => synthesized.dispose());

describe('the CDK stack with EC2 capacity and interface endpoints', () => {
  it('runs the runner privileged on EC2 with the namespace sandbox', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RequiresCompatibilities: ['EC2'],
      NetworkMode: 'awsvpc',
      ContainerDefinitions: [
        Match.objectLike({
          Name: 'runner',
          User: 'root',
          Privileged: true,
          Cpu: 4096,
          Memory: 16384,
          LinuxParameters: Match.objectLike({ InitProcessEnabled: true }),
          Environment: Match.arrayWith([{ Name: 'RUNNER_SANDBOX', Value: 'namespace' }, { Name: 'RUNNER_NETWORK', Value: 'none' }]),
        }),
      ],
    });
  });

  it('scales ECS-optimized arm64 hosts from zero through a capacity provider, with encrypted disks sized by the setting and IMDSv2', () => {
    template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '0', MaxSize: '2' });
    template.hasResourceProperties('AWS::ECS::CapacityProvider', {
      AutoScalingGroupProvider: Match.objectLike({ ManagedScaling: Match.objectLike({ Status: 'ENABLED', TargetCapacity: 100 }), ManagedDraining: 'ENABLED' }),
    });
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: Match.objectLike({ HttpTokens: 'required' }),
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: Match.objectLike({ Encrypted: true, VolumeSize: 180, VolumeType: 'gp3' }) }],
        InstanceType: 'm7g.xlarge',
      }),
    });
    // Runner tasks are kept from the instance metadata (and the host role's credentials).
    const userData = JSON.stringify(Object.values(template.findResources('AWS::EC2::LaunchTemplate'))[0]);
    expect(userData).toContain('ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config');
    const parameters = JSON.stringify(template.toJSON().Parameters);
    expect(parameters).toContain('/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id');
  });

  it('points RunAnsible at the capacity provider instead of the FARGATE launch type', () => {
    const machine = template.toJSON().Resources[logicalId(template, 'AWS::StepFunctions::StateMachine', 'WorkflowStateMachine')] as { Properties: { DefinitionString: string } };
    const runAnsible = (JSON.parse(machine.Properties.DefinitionString) as { States: { RunAnsible: { Parameters: Record<string, unknown> } } }).States.RunAnsible.Parameters;
    expect(runAnsible.LaunchType).toBeUndefined();
    expect(runAnsible.CapacityProviderStrategy).toEqual([{ CapacityProvider: 'cfs-CfsTest-runner-hosts', Weight: 1 }]);
    expect(runAnsible.NetworkConfiguration).toEqual({
      AwsvpcConfiguration: { Subnets: ['${RunnerSubnetA}', '${RunnerSubnetB}'], SecurityGroups: ['${RunnerSecurityGroupId}'] },
    });
    template.hasResourceProperties('AWS::ECS::CapacityProvider', { Name: 'cfs-CfsTest-runner-hosts' });
  });

  it('has no NAT gateway and no internet route: ECR, CloudWatch Logs and the ECS agent endpoints open to the runner tasks and hosts only', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    const interfaces = Object.values(template.findResources('AWS::EC2::VPCEndpoint', { Properties: { VpcEndpointType: 'Interface' } })).map((e) =>
      JSON.stringify((e as { Properties: { ServiceName: unknown } }).Properties.ServiceName),
    );
    expect(interfaces.map((n) => /\.(ecr\.api|ecr\.dkr|logs|ecs|ecs-agent|ecs-telemetry)"/.exec(n)?.[1]).sort()).toEqual(['ecr.api', 'ecr.dkr', 'ecs', 'ecs-agent', 'ecs-telemetry', 'logs']);
    const endpoints = logicalId(template, 'AWS::EC2::SecurityGroup', 'NetworkEndpointSecurityGroup');
    const sources = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress', { Properties: { GroupId: { 'Fn::GetAtt': [endpoints, 'GroupId'] } } })).map(
      (rule) => (rule as { Properties: { FromPort: number; SourceSecurityGroupId: { 'Fn::GetAtt': string[] } } }).Properties,
    );
    expect(sources.map((s) => `${s.FromPort} ${s.SourceSecurityGroupId['Fn::GetAtt'][0]}`).sort()).toEqual([
      `443 ${logicalId(template, 'AWS::EC2::SecurityGroup', 'NetworkRunnerSecurityGroup')}`,
      `443 ${logicalId(template, 'AWS::EC2::SecurityGroup', 'RunnerHostSecurityGroup')}`,
    ]);
  });

  it('lets the runner reach ssh git remotes when ssh clone URLs are allowed', () => {
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('^CFS runner tasks'),
      SecurityGroupEgress: Match.arrayWith([Match.objectLike({ FromPort: 443, ToPort: 443 }), Match.objectLike({ FromPort: 22, ToPort: 22 })]),
    });
  });

  it('adds on Resource "*" only the ECS agent permissions of the hosts, each listed in the README', () => {
    const wildcards = policyStatements(template)
      .filter((p) => resourcesOf(p.statement).includes('*'))
      .map((p) => `${p.policy.replace(/DefaultPolicy.*/, '')} ${actionsOf(p.statement).sort().join(',')}`)
      .filter((w) => !w.startsWith('RunnerExecutionRole ') && !w.startsWith('WorkflowStateMachineRole ') && !w.startsWith('ExecutionCleanupFunctionRole ') && !w.startsWith('SessionExpiryFunctionRole '));
    expect(wildcards.sort()).toEqual([
      'RunnerHostRole ecr:GetAuthorizationToken,ecs:DiscoverPollEndpoint,logs:CreateLogStream,logs:PutLogEvents',
      'RunnerHostRole ecs:Poll,ecs:StartTelemetrySession',
    ]);
    const readme = readFileSync(join(ROOT_DIR, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Deploying to AWS'));
    for (const action of wildcards.flatMap((w) => w.split(' ')[1]!.split(','))) expect(section).toContain(action);
  });

  it('has no AwsSolutions (cdk-nag) finding that is not acknowledged with a reason', () => {
    expect(synthesized.nagViolations()).toEqual([]);
  });

  it('sends every alarm to the topic cfs:alarmTopicArn names and makes no topic of its own', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as { Properties: { AlarmActions: unknown[] } }[];
    expect(alarms.length).toBeGreaterThan(0);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual(['arn:aws:sns:eu-west-1:123456789012:ops-alarms']);
    expect(template.findResources('AWS::SNS::Topic')).toEqual({});
    expect(Object.keys(template.findOutputs('AlarmTopicArn'))).toEqual([]);
  });
});
