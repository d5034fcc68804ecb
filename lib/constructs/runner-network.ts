import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface RunnerNetworkProps {
  /** `nat`: one NAT gateway (git remotes on the internet work); `endpoints`: interface endpoints, no internet. */
  egress: 'nat' | 'endpoints';
  /** Let the runner reach ssh git remotes (port 22) as well as https ones. */
  allowSsh: boolean;
  /** EC2 capacity: the hosts' ECS agent needs the ECS endpoints too (only with `endpoints`). */
  ecsAgentEndpoints: boolean;
  logRetention: logs.RetentionDays;
}

/**
 * Where runner tasks run: two private subnets (the ASL names exactly two, RunnerSubnetA and
 * RunnerSubnetB) in two availability zones, gateway endpoints for S3 and DynamoDB (free, and
 * the image bytes never cross a NAT gateway), flow logs, and one way out for ECR, CloudWatch
 * Logs and git remotes: a single NAT gateway, or interface endpoints when no internet access is
 * wanted (then git remotes must be reachable without it). The runner's security group takes no
 * inbound traffic and sends only HTTPS (and ssh when allowed).
 */
export class RunnerNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  readonly subnets: ec2.ISubnet[];
  readonly securityGroup: ec2.SecurityGroup;
  /** The interface endpoints' security group (with `endpoints`): allow more sources with `allowEndpointsFrom`. */
  private readonly endpointSecurityGroup?: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: RunnerNetworkProps) {
    super(scope, id);
    const nat = props.egress === 'nat';
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: nat ? 1 : 0,
      subnetConfiguration: [
        ...(nat ? [{ name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: false }] : []),
        { name: 'Runner', subnetType: nat ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
      ],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
      restrictDefaultSecurityGroup: false,
    });
    this.subnets = this.vpc.selectSubnets({ subnetGroupName: 'Runner' }).subnets;
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL });

    this.securityGroup = new ec2.SecurityGroup(this, 'RunnerSecurityGroup', {
      vpc: this.vpc,
      description: 'CFS runner tasks: no inbound; outbound HTTPS (ECR, S3, CloudWatch Logs, git) and ssh for git when allowed',
      allowAllOutbound: false,
    });
    this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS: AWS endpoints and https git remotes');
    if (props.allowSsh) this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(22), 'ssh git remotes');

    if (!nat) {
      const endpoints = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
        vpc: this.vpc,
        description: 'CFS interface endpoints: HTTPS from the runner tasks (and runner hosts) only',
        allowAllOutbound: false,
      });
      this.endpointSecurityGroup = endpoints;
      this.allowEndpointsFrom(this.securityGroup, 'HTTPS from runner tasks');
      const services: [string, ec2.InterfaceVpcEndpointAwsService][] = [
        ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
        ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
        ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
        ...(props.ecsAgentEndpoints
          ? ([
              ['Ecs', ec2.InterfaceVpcEndpointAwsService.ECS],
              ['EcsAgent', ec2.InterfaceVpcEndpointAwsService.ECS_AGENT],
              ['EcsTelemetry', ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY],
            ] as [string, ec2.InterfaceVpcEndpointAwsService][])
          : []),
      ];
      for (const [name, service] of services) {
        this.vpc.addInterfaceEndpoint(name, { service, subnets: { subnetGroupName: 'Runner' }, securityGroups: [endpoints], privateDnsEnabled: true, open: false });
      }
    }
  }

  /** Lets `source` use the interface endpoints (a no-op with a NAT gateway, where there are none). */
  allowEndpointsFrom(source: ec2.ISecurityGroup, description: string): void {
    this.endpointSecurityGroup?.addIngressRule(source, ec2.Port.tcp(443), description);
  }
}
