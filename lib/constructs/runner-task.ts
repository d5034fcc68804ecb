import { Duration, IgnoreMode, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { RUNNER_ENV } from '../../functions/runner/settings.ts';
import { ROOT_DIR } from '../bundles.ts';
import { acknowledge } from '../nag.ts';
import { sourceSecretPrefix } from './api-function.ts';
import type { RunnerNetwork } from './runner-network.ts';

/** The container's name: the ASL's RunAnsible overrides address it by this name. */
export const RUNNER_CONTAINER_NAME = 'runner';

/** The Dockerfile, relative to the repository root (the asset's build context). */
export const RUNNER_DOCKERFILE = 'functions/runner/Dockerfile';

/**
 * What goes into the image's build context: the Dockerfile and the self-contained runner bundle,
 * nothing else (synth stages only these two files; no node_modules, no Docker needed to synth).
 */
export const RUNNER_CONTEXT_EXCLUDES = ['*', `!${RUNNER_DOCKERFILE}`, '!dist/runner-image/runner.mjs'];

export interface RunnerTaskProps {
  network: RunnerNetwork;
  capacity: 'fargate' | 'ec2';
  architecture: 'x86_64' | 'arm64';
  cpu: number;
  memoryMiB: number;
  ephemeralStorageGiB: number;
  ec2InstanceType?: string;
  ec2MaxInstances: number;
  artifactBucketName: string;
  logRetention: logs.RetentionDays;
  /** The layers' network in the namespace sandbox (EC2 capacity): `egress` (default) or `none`. The operator's choice, never a session's. */
  layerNetwork?: 'egress' | 'none';
}

/**
 * The runner as an ECS task: the image built from functions/runner/Dockerfile (a CDK asset,
 * built and pushed at deploy time), running as root in its container with the ephemeral storage
 * the setting asks for, ECS's init process as PID 1 (forwards SIGTERM, reaps Ansible's leftovers)
 * and two minutes to stop cleanly. On Fargate the container itself is the sandbox (no privileged
 * mounts there); with EC2 capacity the container is privileged and the runner uses its namespace
 * sandbox, and instances come from an Auto Scaling group that scales from zero through a
 * capacity provider.
 */
export class RunnerTask extends Construct {
  readonly cluster: ecs.Cluster;
  readonly taskDefinition: ecs.TaskDefinition;
  readonly taskRole: iam.Role;
  readonly executionRole: iam.Role;
  /** Set with EC2 capacity: RunAnsible then asks for this capacity provider instead of FARGATE. */
  readonly capacityProviderName?: string;

  constructor(scope: Construct, id: string, props: RunnerTaskProps) {
    super(scope, id);
    const arm = props.architecture === 'arm64';
    this.cluster = new ecs.Cluster(this, 'Cluster', { vpc: props.network.vpc, containerInsightsV2: ecs.ContainerInsights.DISABLED });
    acknowledge(
      this.cluster,
      'AwsSolutions-ECS4',
      "Runner tasks are short batch jobs whose progress and outcome are in the session's status and the runner's log; Container Insights would add CloudWatch metric charges for every task.",
    );
    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'CFS runner: reads source images and its run document, writes results, outcome and logs',
    });
    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'CFS runner: ECS pulls the image and writes the container log',
    });

    if (props.capacity === 'fargate') {
      this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
        cpu: props.cpu,
        memoryLimitMiB: props.memoryMiB,
        ephemeralStorageGiB: props.ephemeralStorageGiB,
        runtimePlatform: { cpuArchitecture: arm ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
        taskRole: this.taskRole,
        executionRole: this.executionRole,
      });
    } else {
      this.taskDefinition = new ecs.Ec2TaskDefinition(this, 'TaskDefinition', {
        networkMode: ecs.NetworkMode.AWS_VPC,
        taskRole: this.taskRole,
        executionRole: this.executionRole,
      });
      this.capacityProviderName = this.addEc2Capacity(props, arm);
    }

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention, removalPolicy: RemovalPolicy.DESTROY });
    this.taskDefinition.addContainer(RUNNER_CONTAINER_NAME, {
      image: ecs.ContainerImage.fromAsset(ROOT_DIR, {
        file: RUNNER_DOCKERFILE,
        exclude: RUNNER_CONTEXT_EXCLUDES,
        ignoreMode: IgnoreMode.DOCKER,
        platform: arm ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
      }),
      essential: true,
      user: 'root',
      // Fargate reserves the task's size; on EC2 the container asks for the same amounts.
      ...(props.capacity === 'ec2' ? { cpu: props.cpu, memoryLimitMiB: props.memoryMiB } : {}),
      privileged: props.capacity === 'ec2',
      linuxParameters: new ecs.LinuxParameters(this, 'LinuxParameters', { initProcessEnabled: true }),
      stopTimeout: Duration.seconds(120),
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'runner' }),
      // Names and flags only, no secrets; the runner keeps AWS_*, ARTIFACT_* and RUNNER_* away from playbooks.
      environment: {
        [RUNNER_ENV.ARTIFACT_BUCKET]: props.artifactBucketName,
        AWS_REGION: Stack.of(this).region,
        [RUNNER_ENV.RUNNER_SANDBOX]: props.capacity === 'ec2' ? 'namespace' : 'container',
        [RUNNER_ENV.RUNNER_NETWORK]: props.layerNetwork ?? 'egress',
        [RUNNER_ENV.RUNNER_ECHO_LAYER_OUTPUT]: 'true',
        // A name prefix, no secret: the run's own short-lived access (source-reader.ts) reads its session's secrets under it.
        [RUNNER_ENV.RUNNER_SOURCE_SECRET_PREFIX]: sourceSecretPrefix(Stack.of(this)),
        // Half the task's memory may hold unpacked roots as tmpfs; only a privileged (EC2) container can mount one, Fargate's stay on disk.
        ...(props.capacity === 'ec2' ? { [RUNNER_ENV.RUNNER_WORKSPACE_MEMORY_BYTES]: String(Math.floor(props.memoryMiB / 2) * 2 ** 20) } : {}),
      },
    });
    acknowledge(this.taskDefinition, 'AwsSolutions-ECS2', 'The variables are a bucket name, the region and runner flags, no secrets; the per-session values come as RunTask overrides.');
    // Pulling the asset image needs an ECR authorization token, an action with no resource type.
    acknowledge(this.executionRole, 'AwsSolutions-IAM5[Resource::*]', 'ecr:GetAuthorizationToken has no resource-level permissions (AWS offers only "*"); image layers are pulled from the one asset repository only.');
  }

  /** An Auto Scaling group of ECS-optimized hosts behind a capacity provider: zero instances at rest. */
  private addEc2Capacity(props: RunnerTaskProps, arm: boolean): string {
    const hostRole = new iam.Role(this, 'HostRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'CFS runner hosts: the ECS agent registers them with the cluster',
    });
    const hostSecurityGroup = new ec2.SecurityGroup(this, 'HostSecurityGroup', {
      vpc: props.network.vpc,
      description: 'CFS runner hosts: no inbound; outbound HTTPS for the ECS agent and image pulls',
      allowAllOutbound: false,
    });
    hostSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS: ECS, ECR, S3, CloudWatch Logs');
    // The host's agent registers with ECS, pulls the image and ships the container log.
    props.network.allowEndpointsFrom(hostSecurityGroup, 'HTTPS from runner hosts (ECS agent, image pulls, logs)');
    const launchTemplate = new ec2.LaunchTemplate(this, 'HostTemplate', {
      machineImage: ecs.EcsOptimizedImage.amazonLinux2023(arm ? ecs.AmiHardwareType.ARM : ecs.AmiHardwareType.STANDARD),
      instanceType: new ec2.InstanceType(props.ec2InstanceType ?? (arm ? 'm7g.xlarge' : 'm6i.xlarge')),
      // The container's writable layer (the workspace) lives on the root volume.
      blockDevices: [{ deviceName: '/dev/xvda', volume: ec2.BlockDeviceVolume.ebs(props.ephemeralStorageGiB + 30, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }],
      requireImdsv2: true,
      role: hostRole,
      securityGroup: hostSecurityGroup,
      userData: ec2.UserData.forLinux(),
    });
    // Tasks (awsvpc) must not reach the instance metadata, and with it the host role's credentials.
    launchTemplate.userData?.addCommands('echo ECS_AWSVPC_BLOCK_IMDS=true >> /etc/ecs/ecs.config');
    const group = new autoscaling.AutoScalingGroup(this, 'Hosts', {
      vpc: props.network.vpc,
      vpcSubnets: { subnets: props.network.subnets },
      launchTemplate,
      minCapacity: 0,
      maxCapacity: props.ec2MaxInstances,
    });
    const capacityProviderName = `cfs-${Stack.of(this).stackName}-runner-hosts`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 255);
    const provider = new ecs.AsgCapacityProvider(this, 'HostCapacity', {
      autoScalingGroup: group,
      capacityProviderName,
      enableManagedScaling: true,
      enableManagedTerminationProtection: false,
      targetCapacityPercent: 100,
      // ECS managed draining moves tasks off a host before scale-in; no lifecycle-hook Lambda needed.
      enableManagedDraining: true,
    });
    this.cluster.addAsgCapacityProvider(provider);
    acknowledge(group, 'AwsSolutions-AS3', 'The group scales between zero and a few hosts as sessions start and end; scaling events are routine and visible in the cluster, so no notification topic is kept.');
    acknowledge(
      hostRole,
      'AwsSolutions-IAM5[Action::ecs:Submit*]',
      "The ECS agent's standard instance permissions (CDK's ECS instance policy): Submit* reports container and task state changes to this cluster only.",
    );
    acknowledge(
      hostRole,
      'AwsSolutions-IAM5[Resource::*]',
      'CDK\'s ECS instance policy: ecs:DiscoverPollEndpoint and ecr:GetAuthorizationToken have no resource-level permissions, ecs:Poll and StartTelemetrySession carry the ecs:cluster condition, and the agent writes its log streams; awsvpc tasks are kept from the instance metadata (ECS_AWSVPC_BLOCK_IMDS), so runner containers do not get these credentials.',
    );
    return capacityProviderName;
  }
}
