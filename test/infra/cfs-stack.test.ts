import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { GLOBAL_INDEXES, TABLE_SCHEMA } from '../../functions/adapters/dynamodb/table-schema.ts';
import { ROOT_DIR } from '../../lib/bundles.ts';
import { ECS_SYNC_RULE } from '../../lib/constructs/session-state-machine.ts';
import { TABLE_DATA_ACTIONS } from '../../lib/constructs/session-table.ts';
import { STEP_FUNCTIONS } from '../../lib/constructs/step-functions.ts';
import { actionsOf, logicalId, policyStatements, resourcesOf, synthesizeStack } from './stack-fixture.ts';

// Synthesized once for the whole file: the default deployment (Fargate, NAT gateway, x86_64).
const synthesized = synthesizeStack();
const { template } = synthesized;
afterAll(() => synthesized.dispose());

/** The functions outside the workflow's steps, by entry: the construct each lives in. */
const OTHER_FUNCTIONS: Record<string, string> = {
  api: 'ApiFunction',
  'dashboard-authorizer': 'ApiDashboardAuthorizer',
  trigger: 'TriggerFunction',
  'execution-ended': 'ExecutionCleanupFunction',
  'session-expired': 'SessionExpiryFunction',
};
const constructOf = (entry: string) => OTHER_FUNCTIONS[entry] ?? `Steps${entry.replace(/-/g, '')}`;
const fnLogicalId = (entry: string) =>
  logicalId(template, 'AWS::Lambda::Function', OTHER_FUNCTIONS[entry] ? new RegExp(`^${OTHER_FUNCTIONS[entry]}(Function)?[0-9A-F]{8}$`) : `${constructOf(entry)}Function`);
const roleLogicalId = (entry: string) => logicalId(template, 'AWS::IAM::Role', `${constructOf(entry)}Role`);
const ALL_ENTRIES = [...Object.keys(OTHER_FUNCTIONS), ...STEP_FUNCTIONS.map((s) => s.entry)];
const getAtt = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

/** The statements of the policy attached to the role with this logical ID. */
function statementsOfRole(role: string) {
  return policyStatements(template)
    .filter((p) => JSON.stringify(p.roles).includes(`"${role}"`))
    .map((p) => p.statement);
}

describe('the CDK stack (default deployment)', () => {
  describe('data', () => {
    it("streams the table's old images to the session-expiry function, filtered to the TTL's removals of session items, which may remove sessions' and runners' objects", () => {
      template.hasResourceProperties('AWS::DynamoDB::Table', { StreamSpecification: { StreamViewType: 'OLD_IMAGE' } });
      const mapping = template.findResources('AWS::Lambda::EventSourceMapping');
      const [source] = Object.values(mapping).filter((m) => JSON.stringify(m).includes(fnLogicalId('session-expired')));
      const filter = JSON.parse(((source?.Properties as { FilterCriteria: { Filters: { Pattern: string }[] } }).FilterCriteria.Filters[0]!).Pattern) as Record<string, unknown>;
      expect(filter).toEqual({
        eventName: ['REMOVE'],
        userIdentity: { type: ['Service'], principalId: ['dynamodb.amazonaws.com'] },
        dynamodb: { OldImage: { pk: { S: [{ prefix: 'SESSION#' }] }, sk: { S: ['SESSION'] } } },
      });
      expect(source?.Properties).toMatchObject({ BisectBatchOnFunctionError: true, MaximumRetryAttempts: 8, DestinationConfig: { OnFailure: { Destination: expect.anything() } } });
      const removes = statementsOfRole(roleLogicalId('session-expired')).filter((s) => actionsOf(s).includes('s3:DeleteObject'));
      expect(JSON.stringify(removes.flatMap(resourcesOf))).toMatch(/sessions\/\*.*runner\/\*|runner\/\*.*sessions\/\*/);
    });

    it('declares the table from the shared key schema: on demand, point-in-time recovery, encryption, deletion protection, TTL, retained', () => {
      template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        Properties: {
          KeySchema: [
            { AttributeName: TABLE_SCHEMA.partitionKey, KeyType: 'HASH' },
            { AttributeName: TABLE_SCHEMA.sortKey, KeyType: 'RANGE' },
          ],
          BillingMode: 'PAY_PER_REQUEST',
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: { SSEEnabled: true },
          DeletionProtectionEnabled: true,
          TimeToLiveSpecification: { AttributeName: TABLE_SCHEMA.ttlAttribute, Enabled: true },
          GlobalSecondaryIndexes: GLOBAL_INDEXES.map((index) =>
            Match.objectLike({
              IndexName: index.name,
              KeySchema: [
                { AttributeName: index.partitionKey, KeyType: 'HASH' },
                { AttributeName: index.sortKey, KeyType: 'RANGE' },
              ],
              Projection: { ProjectionType: index.projection },
            }),
          ),
        },
      });
    });

    it('keeps artifacts in an encrypted, private, versioned, logged bucket with lifecycle rules for session logs and unfinished uploads', () => {
      const logs = logicalId(template, 'AWS::S3::Bucket', 'ArtifactsAccessLogs');
      template.hasResource('AWS::S3::Bucket', {
        DeletionPolicy: 'Retain',
        Properties: Match.objectLike({
          BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
          PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
          VersioningConfiguration: { Status: 'Enabled' },
          LoggingConfiguration: { DestinationBucketName: { Ref: logs }, LogFilePrefix: 'artifacts/' },
          LifecycleConfiguration: {
            Rules: Match.arrayWith([
              Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 }, Status: 'Enabled' }),
              Match.objectLike({ Prefix: 'sessions/', ExpirationInDays: 90, Status: 'Enabled' }),
              // What runners wrote, under their unguessable prefixes, expires as session documents do.
              Match.objectLike({ Id: 'expire-runner-prefixes', Prefix: 'runner/', ExpirationInDays: 90, Status: 'Enabled' }),
              Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
            ]),
          },
        }),
      });
    });

    it('refuses every request to either bucket that does not use TLS', () => {
      const policies = template.findResources('AWS::S3::BucketPolicy');
      expect(Object.keys(policies)).toHaveLength(2);
      for (const policy of Object.values(policies)) {
        expect((policy as { Properties: { PolicyDocument: { Statement: unknown[] } } }).Properties.PolicyDocument.Statement).toContainEqual(
          expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        );
      }
    });
  });

  describe('functions', () => {
    it('runs every Lambda on Node 24, arm64, from its bundle, with JSON logs into a log group with a retention', () => {
      const functions = template.findResources('AWS::Lambda::Function');
      expect(Object.keys(functions)).toHaveLength(ALL_ENTRIES.length);
      for (const entry of ALL_ENTRIES) {
        const properties = (functions[fnLogicalId(entry)] as { Properties: Record<string, { LogGroup?: { Ref: string } }> }).Properties;
        expect(properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], Handler: 'index.handler', LoggingConfig: { LogFormat: 'JSON' } });
        const group = properties.LoggingConfig!.LogGroup!.Ref;
        expect(template.toJSON().Resources[group]).toMatchObject({ Type: 'AWS::Logs::LogGroup', Properties: { RetentionInDays: 30 } });
      }
    });

    it('tells each step function where the table, bucket and bus are, and only the API and the trigger where the state machine is', () => {
      for (const spec of STEP_FUNCTIONS) {
        const environment = (template.toJSON().Resources[fnLogicalId(spec.entry)] as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties.Environment.Variables;
        expect(Object.keys(environment)).toEqual(expect.arrayContaining([AWS_ENV.TABLE_NAME, AWS_ENV.ARTIFACT_BUCKET, AWS_ENV.EVENT_BUS_NAME]));
        expect(environment[AWS_ENV.STATE_MACHINE_ARN]).toBeUndefined();
      }
      template.hasResourceProperties('AWS::Lambda::Function', {
        Timeout: 29,
        Environment: { Variables: Match.objectLike({ [AWS_ENV.STATE_MACHINE_ARN]: Match.anyValue(), [AWS_ENV.CLONE_URL_SCHEMES]: 'https' }) },
      });
    });

    it('grants every function its own log group only, with no AWS managed policy', () => {
      for (const role of Object.values(template.findResources('AWS::IAM::Role'))) {
        expect((role as { Properties: { ManagedPolicyArns?: unknown } }).Properties.ManagedPolicyArns).toBeUndefined();
      }
      for (const entry of ALL_ENTRIES) {
        const logs = statementsOfRole(roleLogicalId(entry)).filter((s) => actionsOf(s).some((a) => a.startsWith('logs:')));
        expect(logs).toHaveLength(1);
        expect(resourcesOf(logs[0]!)).toEqual([getAtt(logicalId(template, 'AWS::Logs::LogGroup', `${constructOf(entry)}Logs`))]);
      }
    });

    it("gives the steps only the artifact access their code needs (Cleanup cannot read images, RenderInventory cannot touch them)", () => {
      const bucket = logicalId(template, 'AWS::S3::Bucket', 'ArtifactsD');
      const objects = (role: string) =>
        statementsOfRole(roleLogicalId(role))
          .filter((s) => actionsOf(s).some((a) => a.startsWith('s3:') && a !== 's3:ListBucket'))
          .flatMap((s) => actionsOf(s).flatMap((a) => resourcesOf(s).map((r) => `${a} ${(JSON.stringify(r).match(/\/(boot-images|sessions|runner|layer-cache)\/\*/) ?? [JSON.stringify(r), JSON.stringify(r)])[1]}`)))
          .sort();
      // Cleanup also sweeps the layer cache (AWS has no periodic sweep).
      expect(objects('cleanup')).toEqual([
        's3:AbortMultipartUpload layer-cache',
        's3:DeleteObject layer-cache',
        's3:DeleteObject runner',
        's3:GetObject layer-cache',
        's3:GetObject sessions',
        's3:PutObject layer-cache',
      ]);
      expect(objects('render-inventory')).toEqual([
        's3:AbortMultipartUpload runner',
        's3:AbortMultipartUpload sessions',
        's3:DeleteObject runner',
        's3:GetObject sessions',
        's3:PutObject runner',
        's3:PutObject sessions',
      ]);
      // Promotion: read under the runner's prefix, written under boot-images/ (results) and
      // layer-cache/ (the change sets the runner staged), the original removed.
      expect(objects('package-and-upload')).toEqual([
        's3:AbortMultipartUpload boot-images',
        's3:AbortMultipartUpload layer-cache',
        's3:DeleteObject layer-cache',
        's3:DeleteObject runner',
        's3:GetObject boot-images',
        's3:GetObject layer-cache',
        's3:GetObject runner',
        's3:GetObject sessions',
        's3:PutObject boot-images',
        's3:PutObject layer-cache',
      ]);
      expect(objects('validate-image')).toEqual(['s3:GetObject boot-images']);
      // Shown results pin their layers' cache entries.
      expect(objects('record-artifact')).toEqual(['s3:AbortMultipartUpload layer-cache', 's3:GetObject runner', 's3:GetObject sessions', 's3:PutObject layer-cache']);
      // Readers may list the bucket, so a missing key is a 404 and not a 403.
      expect(statementsOfRole(roleLogicalId('validate-image'))).toContainEqual(expect.objectContaining({ Action: 's3:ListBucket', Resource: getAtt(bucket) }));
    });

    it('lets only the publishing steps, the execution clean-up and the API put events, on the product bus only', () => {
      const bus = logicalId(template, 'AWS::Events::EventBus', 'Events');
      const publishers = ['api', 'execution-ended', ...STEP_FUNCTIONS.filter((s) => s.publishes).map((s) => s.entry)];
      for (const entry of ALL_ENTRIES) {
        const puts = statementsOfRole(roleLogicalId(entry)).filter((s) => actionsOf(s).includes('events:PutEvents'));
        expect(puts.map((s) => s.Resource)).toEqual(publishers.includes(entry) ? [getAtt(bus)] : []);
      }
    });

    it('gives the stores the item actions their commands need on the table and its indexes, and the wait step single items only', () => {
      const table = logicalId(template, 'AWS::DynamoDB::Table', 'DataTable');
      expect(statementsOfRole(roleLogicalId('api'))).toContainEqual(
        expect.objectContaining({ Action: [...TABLE_DATA_ACTIONS].sort(), Resource: [getAtt(table), { 'Fn::Join': ['', [getAtt(table), '/index/*']] }] }),
      );
      const waitTable = statementsOfRole(roleLogicalId('wait-for-images')).filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
      expect(waitTable).toEqual([expect.objectContaining({ Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem'], Resource: getAtt(table) })]);
    });

    it('lets the API start and stop executions of the session state machine (and describe it, for health), the wait step send its task token, the trigger start and wake, nothing else of Step Functions', () => {
      const states = (entry: string) => statementsOfRole(roleLogicalId(entry)).filter((s) => actionsOf(s).some((a) => a.startsWith('states:')));
      const arnOf = (resource: unknown) => JSON.stringify(resource);
      expect(states('api').map((s) => s.Action)).toEqual([['states:DescribeStateMachine', 'states:StartExecution'], 'states:StopExecution']);
      expect(arnOf(states('api')[0]!.Resource)).toContain(':stateMachine:CfsTest-sessions"');
      expect(arnOf(states('api')[1]!.Resource)).toContain(':execution:CfsTest-sessions:*"');
      expect(states('wait-for-images').map((s) => s.Action)).toEqual(['states:SendTaskSuccess']);
      expect(states('trigger').map((s) => s.Action)).toEqual([['states:SendTaskSuccess', 'states:StartExecution']]);
      expect(arnOf(states('trigger')[0]!.Resource)).toContain(':stateMachine:CfsTest-sessions"');
      for (const entry of [...STEP_FUNCTIONS.map((s) => s.entry).filter((e) => e !== 'wait-for-images'), 'execution-ended']) expect(states(entry)).toEqual([]);
    });
  });

  describe('the state machine', () => {
    const machine = logicalId(template, 'AWS::StepFunctions::StateMachine', 'WorkflowStateMachine');
    const role = logicalId(template, 'AWS::IAM::Role', 'WorkflowStateMachineRole');
    const statements = statementsOfRole(role);
    const definition = JSON.parse((template.toJSON().Resources[machine] as { Properties: { DefinitionString: string } }).Properties.DefinitionString) as {
      States: Record<string, { Parameters?: Record<string, unknown> }>;
    };

    it('deploys the ASL file itself, inline, with logging of all events and X-Ray', () => {
      expect(definition).toEqual(JSON.parse(readFileSync(join(ROOT_DIR, 'statemachines', 'image-customization.asl.json'), 'utf8')));
      template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
        StateMachineName: 'CfsTest-sessions',
        StateMachineType: 'STANDARD',
        TracingConfiguration: { Enabled: true },
        LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false, Destinations: [Match.objectLike({ CloudWatchLogsLogGroup: Match.anyValue() })] },
      });
    });

    it('may invoke exactly the step functions (not the API function)', () => {
      const invoke = statements.filter((s) => actionsOf(s).includes('lambda:InvokeFunction'));
      expect(invoke).toHaveLength(1);
      expect(new Set(resourcesOf(invoke[0]!).map((r) => JSON.stringify(r)))).toEqual(new Set(STEP_FUNCTIONS.map((s) => JSON.stringify(getAtt(fnLogicalId(s.entry))))));
    });

    it('may run, stop and describe only the runner task, in the runner cluster', () => {
      const cluster = logicalId(template, 'AWS::ECS::Cluster', 'RunnerCluster');
      const taskDefinition = logicalId(template, 'AWS::ECS::TaskDefinition', 'RunnerTaskDefinition');
      expect(statements).toContainEqual({ Action: 'ecs:RunTask', Effect: 'Allow', Resource: { Ref: taskDefinition }, Condition: { ArnEquals: { 'ecs:cluster': getAtt(cluster) } } });
      const stop = statements.find((s) => actionsOf(s).includes('ecs:StopTask'))!;
      expect(actionsOf(stop).sort()).toEqual(['ecs:DescribeTasks', 'ecs:StopTask']);
      expect(JSON.stringify(stop.Resource)).toContain(`":task/",{"Ref":"${cluster}"},"/*"`);
      expect(stop.Condition).toEqual({ ArnEquals: { 'ecs:cluster': getAtt(cluster) } });
    });

    it('may pass exactly the runner task role and execution role', () => {
      const pass = statements.filter((s) => actionsOf(s).includes('iam:PassRole'));
      expect(pass).toHaveLength(1);
      expect(resourcesOf(pass[0]!)).toEqual(expect.arrayContaining([getAtt(logicalId(template, 'AWS::IAM::Role', 'RunnerTaskRole')), getAtt(logicalId(template, 'AWS::IAM::Role', 'RunnerExecutionRole'))]));
      expect(resourcesOf(pass[0]!)).toHaveLength(2);
    });

    it('may manage only the EventBridge rule that .sync uses', () => {
      const rule = statements.find((s) => actionsOf(s).includes('events:PutRule'))!;
      expect(actionsOf(rule).sort()).toEqual(['events:DescribeRule', 'events:PutRule', 'events:PutTargets']);
      expect(JSON.stringify(rule.Resource)).toContain(`:rule/${ECS_SYNC_RULE}`);
    });
  });

  describe('the runner', () => {
    it('runs as root with init, ephemeral storage from the setting, two minutes to stop, awslogs, and the container sandbox on Fargate', () => {
      template.hasResourceProperties('AWS::ECS::TaskDefinition', {
        RequiresCompatibilities: ['FARGATE'],
        NetworkMode: 'awsvpc',
        Cpu: '4096',
        Memory: '16384',
        EphemeralStorage: { SizeInGiB: 100 },
        RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
        ContainerDefinitions: [
          Match.objectLike({
            Name: 'runner',
            User: 'root',
            Privileged: false,
            StopTimeout: 120,
            LinuxParameters: Match.objectLike({ InitProcessEnabled: true }),
            LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }),
            Environment: Match.arrayWith([
              { Name: 'ARTIFACT_BUCKET', Value: { Ref: logicalId(template, 'AWS::S3::Bucket', 'ArtifactsD') } },
              { Name: 'RUNNER_SANDBOX', Value: 'container' },
              { Name: 'RUNNER_NETWORK', Value: 'egress' },
            ]),
          }),
        ],
      });
    });

    it('lets the runner read source images and the layer cache and read, write and remove only under runner/, with no listing and nothing of sessions/', () => {
      const bucket = getAtt(logicalId(template, 'AWS::S3::Bucket', 'ArtifactsD'));
      const objects = (prefix: string) => ({ 'Fn::Join': ['', [bucket, `/${prefix}/*`]] });
      const role = logicalId(template, 'AWS::IAM::Role', 'RunnerTaskRole');
      const s3 = statementsOfRole(role).filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
      // Exactly these statements: a playbook holding the role's credentials can do no more.
      expect(s3).toEqual([
        { Action: 's3:GetObject', Effect: 'Allow', Resource: [objects('boot-images'), objects('layer-cache'), objects('runner')] },
        { Action: ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:PutObject'], Effect: 'Allow', Resource: objects('runner') },
      ]);
      const policy = Object.values(template.findResources('AWS::IAM::Policy', { Properties: { Roles: Match.arrayWith([{ Ref: role }]) } }));
      const text = JSON.stringify(policy);
      expect(text).not.toContain('/sessions/*');
      expect(text).not.toContain('s3:ListBucket');
      const writes = s3.filter((s) => actionsOf(s).some((a) => a !== 's3:GetObject'));
      expect(JSON.stringify(writes)).not.toContain('/boot-images/*');
      // The cache is written by the control plane only: a playbook could otherwise plant another configuration's layer.
      expect(JSON.stringify(writes)).not.toContain('/layer-cache/*');
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: role }],
        PolicyDocument: Match.objectLike({ Statement: Match.arrayWith([Match.objectLike({ Action: 's3:GetObject', Resource: [objects('boot-images'), objects('layer-cache'), objects('runner')] })]) }),
      });
    });

    it('sits in two private subnets behind a security group with no inbound rule and HTTPS out only', () => {
      template.hasResourceProperties('AWS::EC2::SecurityGroup', {
        GroupDescription: Match.stringLikeRegexp('^CFS runner tasks'),
        SecurityGroupEgress: [{ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp', Description: Match.anyValue() }],
        SecurityGroupIngress: Match.absent(),
      });
      const substitutions = (template.toJSON().Resources[logicalId(template, 'AWS::StepFunctions::StateMachine', 'WorkflowStateMachine')] as { Properties: { DefinitionSubstitutions: Record<string, { Ref: string }> } }).Properties.DefinitionSubstitutions;
      for (const subnet of [substitutions.RunnerSubnetA!.Ref, substitutions.RunnerSubnetB!.Ref]) {
        expect(template.toJSON().Resources[subnet]).toMatchObject({ Type: 'AWS::EC2::Subnet', Properties: { MapPublicIpOnLaunch: false } });
        expect(subnet).toMatch(/Runner/);
      }
    });

    it('reaches S3 and DynamoDB through gateway endpoints and the rest through one NAT gateway, with flow logs', () => {
      const gateways = Object.values(template.findResources('AWS::EC2::VPCEndpoint')).map((e) => JSON.stringify((e as { Properties: { ServiceName: unknown } }).Properties.ServiceName));
      expect(gateways.some((n) => n.includes('.s3'))).toBe(true);
      expect(gateways.some((n) => n.includes('.dynamodb'))).toBe(true);
      template.resourceCountIs('AWS::EC2::NatGateway', 1);
      template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
    });
  });

  describe('the API', () => {
    /** Every method as `METHOD /path` (the path built from its resource's parents) with its properties. */
    function methodsByRoute(): Map<string, Record<string, unknown>> {
      const resources = template.findResources('AWS::ApiGateway::Resource') as Record<string, { Properties: { ParentId: { Ref?: string }; PathPart: string } }>;
      const pathOf = (resource: { Ref?: string }): string => {
        const own = resource.Ref ? resources[resource.Ref] : undefined;
        return own ? `${pathOf(own.Properties.ParentId).replace(/\/$/, '')}/${own.Properties.PathPart}` : '/';
      };
      const methods = Object.values(template.findResources('AWS::ApiGateway::Method')) as { Properties: Record<string, unknown> & { HttpMethod: string; ResourceId: { Ref?: string } } }[];
      return new Map(methods.map((m) => [`${m.Properties.HttpMethod} ${pathOf(m.Properties.ResourceId)}`, m.Properties]));
    }

    it("requires IAM (SigV4) authorization and the request validator on every method but the dashboard's GETs", () => {
      // Arrange
      const validator = logicalId(template, 'AWS::ApiGateway::RequestValidator', 'ApiValidator');
      const authorizer = logicalId(template, 'AWS::ApiGateway::Authorizer', 'ApiDashboardTokenAuthorizer');
      // Act
      const methods = methodsByRoute();
      const notIam = [...methods].filter(([, p]) => p.AuthorizationType !== 'AWS_IAM').map(([route, p]) => [route, p.AuthorizationType, p.AuthorizerId]);
      // Assert: the static page and files need nothing, the read-only mirror the dashboard token; every other method (ANY included) IAM.
      expect(notIam.sort()).toEqual([
        ['GET /', 'NONE', undefined],
        ['GET /dashboard/apis/{proxy+}', 'CUSTOM', { Ref: authorizer }],
        ['GET /dashboard/{file}', 'NONE', undefined],
        ['HEAD /dashboard/apis/{proxy+}', 'CUSTOM', { Ref: authorizer }],
      ]);
      for (const route of ['ANY /', 'ANY /{proxy+}', 'ANY /dashboard/{file}', 'ANY /dashboard/apis/{proxy+}']) expect(methods.get(route)?.AuthorizationType).toBe('AWS_IAM');
      for (const properties of methods.values()) expect(properties.RequestValidatorId).toEqual({ Ref: validator });
      template.hasResourceProperties('AWS::ApiGateway::RequestValidator', { ValidateRequestBody: true, ValidateRequestParameters: true });
    });

    it('checks the dashboard token with the authorizer Lambda, as a cached TOKEN authorizer on the Authorization header', () => {
      // Act
      const authorizers = Object.values(template.findResources('AWS::ApiGateway::Authorizer')) as { Properties: Record<string, unknown> }[];
      // Assert
      expect(authorizers).toHaveLength(1);
      expect(authorizers[0]!.Properties).toMatchObject({ Type: 'TOKEN', IdentitySource: 'method.request.header.Authorization', AuthorizerResultTtlInSeconds: 300 });
      expect(JSON.stringify(authorizers[0]!.Properties.AuthorizerUri)).toContain(`"${fnLogicalId('dashboard-authorizer')}"`);
    });

    it('generates the dashboard token in Secrets Manager, tells the authorizer where it is, and lets nothing else read it', () => {
      // Arrange
      const secret = logicalId(template, 'AWS::SecretsManager::Secret', 'ApiDashboardToken');
      // Act
      // The API's grant on CFS sources' secrets (its own prefix) is checked in source-secrets.test.ts.
      const readers = policyStatements(template).filter(
        (p) => JSON.stringify(p.statement).includes(secret) || (actionsOf(p.statement).some((a) => a.startsWith('secretsmanager:')) && !JSON.stringify(resourcesOf(p.statement)).includes('/sources/')),
      );
      // Assert
      template.hasResourceProperties('AWS::SecretsManager::Secret', { GenerateSecretString: Match.objectLike({ PasswordLength: 48, ExcludePunctuation: true }) });
      expect(readers.map((p) => p.roles)).toEqual([[{ Ref: roleLogicalId('dashboard-authorizer') }]]);
      expect(actionsOf(readers[0]!.statement).sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
      expect(resourcesOf(readers[0]!.statement)).toEqual([{ Ref: secret }]);
      const environment = (template.toJSON().Resources[fnLogicalId('dashboard-authorizer')] as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties.Environment.Variables;
      expect(environment[AWS_ENV.DASHBOARD_TOKEN_SECRET_ARN]).toEqual({ Ref: secret });
      template.hasOutput('DashboardTokenSecretArn', { Value: { Ref: secret } });
      template.hasOutput('DashboardUrl', { Value: Match.objectLike({ 'Fn::Join': Match.anyValue() }) });
    });

    it('writes JSON access logs, throttles the stage and traces with X-Ray', () => {
      template.hasResourceProperties('AWS::ApiGateway::Stage', {
        AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('"requestId":"\\$context.requestId"') },
        MethodSettings: [Match.objectLike({ HttpMethod: '*', ResourcePath: '/*', ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 })],
        TracingEnabled: true,
      });
    });

    it('answers gateway errors (a missing signature, throttling) as problem+json like the app', () => {
      for (const type of ['DEFAULT_4XX', 'DEFAULT_5XX']) {
        template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
          ResponseType: type,
          ResponseParameters: { 'gatewayresponse.header.Content-Type': "'application/problem+json'" },
          ResponseTemplates: { 'application/json': Match.stringLikeRegexp('"detail":\\$context.error.messageString') },
        });
      }
    });
  });

  describe('least privilege', () => {
    /** Every statement granting on `Resource: "*"`, as `<role> <actions>`. */
    const wildcards = policyStatements(template)
      .filter((p) => resourcesOf(p.statement).includes('*'))
      .map((p) => `${p.policy.replace(/DefaultPolicy.*/, '')} ${actionsOf(p.statement).sort().join(',')}`);

    it('grants on Resource "*" only the actions AWS offers no narrower resource for', () => {
      expect(wildcards.sort()).toEqual([
        'ExecutionCleanupFunctionRole ecs:ListTasks',
        'RunnerExecutionRole ecr:GetAuthorizationToken',
        'SessionExpiryFunctionRole dynamodb:ListStreams',
        'WorkflowStateMachineRole logs:CreateLogDelivery,logs:DeleteLogDelivery,logs:DescribeLogGroups,logs:DescribeResourcePolicies,logs:GetLogDelivery,logs:ListLogDeliveries,logs:PutResourcePolicy,logs:UpdateLogDelivery,xray:GetSamplingRules,xray:GetSamplingTargets,xray:PutTelemetryRecords,xray:PutTraceSegments',
      ]);
    });

    it('lists each of those actions in the README deployment section', () => {
      const readme = readFileSync(join(ROOT_DIR, 'README.md'), 'utf8');
      const section = readme.slice(readme.indexOf('## Deploying to AWS'));
      for (const action of wildcards.flatMap((w) => w.split(' ')[1]!.split(','))) expect(section).toContain(action);
    });

    it('has no AwsSolutions (cdk-nag) finding that is not acknowledged with a reason', () => {
      expect(synthesized.nagViolations()).toEqual([]);
    });
  });

  describe('events, schedules, clean-up and alarms', () => {
    const dlq = logicalId(template, 'AWS::SQS::Queue', 'EventDeadLetters');
    const triggerFn = fnLogicalId('trigger');
    const cleanupFn = fnLogicalId('execution-ended');
    const schedulerRole = logicalId(template, 'AWS::IAM::Role', 'TriggerSchedulerRole');
    const apiEnvironment = () =>
      (template.toJSON().Resources[fnLogicalId('api')] as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties.Environment.Variables;

    it('routes Image Registered on the product bus to the trigger Lambda, with retries and the dead-letter queue', () => {
      template.hasResourceProperties('AWS::Events::Rule', {
        EventBusName: { Ref: logicalId(template, 'AWS::Events::EventBus', 'Events') },
        EventPattern: { source: ['cfs.ims'], 'detail-type': ['Image Registered'] },
        Targets: [Match.objectLike({ Arn: getAtt(triggerFn), DeadLetterConfig: { Arn: getAtt(dlq) }, RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 21600 } })],
      });
      template.hasResourceProperties('AWS::Lambda::Permission', { FunctionName: getAtt(triggerFn), Principal: 'events.amazonaws.com', SourceArn: getAtt(logicalId(template, 'AWS::Events::Rule', 'TriggerImageRegistered')) });
      template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    });

    it('gives the trigger the table, the image manifests and Step Functions start and wake; no bucket writes', () => {
      const statements = statementsOfRole(roleLogicalId('trigger'));
      const table = logicalId(template, 'AWS::DynamoDB::Table', 'DataTable');
      expect(statements).toContainEqual(expect.objectContaining({ Action: [...TABLE_DATA_ACTIONS].sort(), Resource: [getAtt(table), { 'Fn::Join': ['', [getAtt(table), '/index/*']] }] }));
      const s3 = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
      expect(s3.flatMap((s) => actionsOf(s)).sort()).toEqual(['s3:GetObject', 's3:ListBucket']);
      expect(JSON.stringify(s3.find((s) => actionsOf(s).includes('s3:GetObject'))!.Resource)).toContain('/boot-images/*');
    });

    it('makes a schedule group of its own and a role only Scheduler may assume, for that group, to invoke the trigger', () => {
      template.hasResourceProperties('AWS::Scheduler::ScheduleGroup', { Name: 'CfsTest-automations' });
      template.hasResourceProperties('AWS::IAM::Role', {
        AssumeRolePolicyDocument: {
          Statement: [
            Match.objectLike({
              Principal: { Service: 'scheduler.amazonaws.com' },
              Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' }, 'aws:SourceArn': getAtt(logicalId(template, 'AWS::Scheduler::ScheduleGroup', 'TriggerSchedules')) } },
            }),
          ],
        },
      });
      expect(statementsOfRole(schedulerRole).filter((s) => !actionsOf(s).some((a) => a.startsWith('logs:')))).toEqual([
        expect.objectContaining({ Action: 'lambda:InvokeFunction', Resource: getAtt(triggerFn) }),
        expect.objectContaining({ Action: 'sqs:SendMessage', Resource: getAtt(dlq) }),
      ]);
    });

    it('tells the API the schedule group, target, role and dead-letter queue, and lets it manage only that group\'s schedules and pass only that role', () => {
      expect(apiEnvironment()).toMatchObject({
        [AWS_ENV.SCHEDULE_GROUP_NAME]: 'CfsTest-automations',
        [AWS_ENV.SCHEDULE_TARGET_ARN]: getAtt(triggerFn),
        [AWS_ENV.SCHEDULE_ROLE_ARN]: getAtt(schedulerRole),
        [AWS_ENV.SCHEDULE_DEAD_LETTER_ARN]: getAtt(dlq),
      });
      const statements = statementsOfRole(roleLogicalId('api'));
      const scheduler = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('scheduler:')));
      expect(scheduler).toHaveLength(1);
      expect(actionsOf(scheduler[0]!).sort()).toEqual(['scheduler:CreateSchedule', 'scheduler:DeleteSchedule', 'scheduler:UpdateSchedule']);
      expect(JSON.stringify(scheduler[0]!.Resource)).toContain(':schedule/CfsTest-automations/*');
      const pass = statements.filter((s) => actionsOf(s).includes('iam:PassRole'));
      expect(pass).toEqual([expect.objectContaining({ Resource: getAtt(schedulerRole), Condition: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } } })]);
    });

    it('sends this state machine\'s ABORTED, TIMED_OUT and FAILED executions to the clean-up Lambda, with retries and the dead-letter queue', () => {
      template.hasResourceProperties('AWS::Events::Rule', {
        EventPattern: {
          source: ['aws.states'],
          'detail-type': ['Step Functions Execution Status Change'],
          detail: { status: ['ABORTED', 'TIMED_OUT', 'FAILED'], stateMachineArn: [Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith([':stateMachine:CfsTest-sessions'])]) })] },
        },
        Targets: [Match.objectLike({ Arn: getAtt(cleanupFn), DeadLetterConfig: { Arn: getAtt(dlq) }, RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 21600 } })],
      });
      const rule = template.toJSON().Resources[logicalId(template, 'AWS::Events::Rule', 'ExecutionCleanupExecutionEnded')] as { Properties: { EventBusName?: unknown } };
      expect(rule.Properties.EventBusName).toBeUndefined();
    });

    it('lets the clean-up find and stop runner tasks in the runner cluster only, and remove staged uploads and session documents', () => {
      const cluster = logicalId(template, 'AWS::ECS::Cluster', 'RunnerCluster');
      const statements = statementsOfRole(roleLogicalId('execution-ended'));
      expect(statements).toContainEqual({ Action: 'ecs:ListTasks', Effect: 'Allow', Resource: '*', Condition: { ArnEquals: { 'ecs:cluster': getAtt(cluster) } } });
      const stop = statements.find((s) => actionsOf(s).includes('ecs:StopTask'))!;
      expect(actionsOf(stop).sort()).toEqual(['ecs:DescribeTasks', 'ecs:StopTask']);
      expect(JSON.stringify(stop.Resource)).toContain(`":task/",{"Ref":"${cluster}"},"/*"`);
      const removes = statements.find((s) => actionsOf(s).includes('s3:DeleteObject'))!;
      expect(JSON.stringify(removes.Resource)).toContain('/boot-images/*');
      expect(JSON.stringify(removes.Resource)).toContain('/sessions/*');
      const environment = (template.toJSON().Resources[cleanupFn] as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties.Environment.Variables;
      expect(environment[AWS_ENV.RUNNER_CLUSTER]).toEqual(getAtt(cluster));
    });

    it('sends an event the trigger or the clean-up failed on every attempt to an encrypted, TLS-only queue that keeps it 14 days, which each may only write', () => {
      // Arrange
      const failures = logicalId(template, 'AWS::SQS::Queue', 'AsyncFailures');
      const configs = Object.values(template.findResources('AWS::Lambda::EventInvokeConfig')) as { Properties: Record<string, unknown> }[];
      // Assert: a rule's dead-letter queue sees only undelivered events; a function that threw is caught here.
      expect(configs.map((c) => c.Properties).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual(
        [cleanupFn, triggerFn].sort().map((fn) => ({
          FunctionName: { Ref: fn },
          Qualifier: '$LATEST',
          MaximumRetryAttempts: 2,
          MaximumEventAgeInSeconds: 21600,
          DestinationConfig: { OnFailure: { Destination: getAtt(failures) } },
        })),
      );
      expect(template.toJSON().Resources[failures].Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: failures }],
        PolicyDocument: { Statement: [Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })] },
      });
      for (const entry of ['trigger', 'execution-ended']) {
        const writes = statementsOfRole(roleLogicalId(entry)).filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
        expect(writes).toEqual([expect.objectContaining({ Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'], Resource: getAtt(failures) })]);
      }
      template.hasOutput('AsyncFailureQueueUrl', { Value: { Ref: failures } });
    });

    it('alarms on failed executions, the API 5xx rate, runner task timeouts, over-long executions, dead letters, errors of the trigger and the clean-up and their failed events, all to the alarm topic', () => {
      const topic = { Ref: logicalId(template, 'AWS::SNS::Topic', 'AlarmTopic') };
      const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as { Properties: { AlarmActions: unknown[]; TreatMissingData: string } }[];
      expect(alarms).toHaveLength(8);
      for (const alarm of alarms) expect(alarm.Properties).toMatchObject({ AlarmActions: [topic], TreatMissingData: 'notBreaching' });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Metrics: Match.arrayWith([Match.objectLike({ Expression: 'failed + timedOut' }), Match.objectLike({ Id: 'failed', MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ExecutionsFailed' }) }) })]),
        Threshold: 1,
      });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/ApiGateway', MetricName: '5XXError', Statistic: 'Average', Threshold: 0.05, ComparisonOperator: 'GreaterThanThreshold' });
      template.hasResourceProperties('AWS::Logs::MetricFilter', {
        LogGroupName: { Ref: logicalId(template, 'AWS::Logs::LogGroup', 'WorkflowLogs') },
        FilterPattern: '{ ($.type = "TaskTimedOut") && ($.details.resourceType = "ecs") }',
        MetricTransformations: [Match.objectLike({ MetricNamespace: 'CFS', MetricName: 'RunnerTaskTimedOut' })],
      });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'CFS', MetricName: 'RunnerTaskTimedOut', Threshold: 1 });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'AWS/States', MetricName: 'ExecutionTime', Statistic: 'Maximum', Threshold: (3600 + 14400 + 3600) * 1000 });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq, 'QueueName'] } }],
        Threshold: 1,
      });
      for (const fn of [triggerFn, cleanupFn]) {
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          Namespace: 'AWS/Lambda',
          MetricName: 'Errors',
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: fn } }],
          Statistic: 'Sum',
          Period: 300,
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        });
      }
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(template, 'AWS::SQS::Queue', 'AsyncFailures'), 'QueueName'] } }],
        Statistic: 'Maximum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      template.hasResourceProperties('AWS::SNS::Topic', { DisplayName: 'CFS alarms' });
      template.hasOutput('AlarmTopicArn', { Value: topic });
    });

    it("sends the runner's layer output to CloudWatch and lets the API read the layer logs it follows by cursor", () => {
      template.hasResourceProperties('AWS::ECS::TaskDefinition', {
        ContainerDefinitions: [
          Match.objectLike({
            Name: 'runner',
            Environment: Match.arrayWith([{ Name: 'RUNNER_ECHO_LAYER_OUTPUT', Value: 'true' }]),
            LogConfiguration: Match.objectLike({ LogDriver: 'awslogs', Options: Match.objectLike({ 'awslogs-stream-prefix': 'runner' }) }),
          }),
        ],
      });
      const api = statementsOfRole(roleLogicalId('api'));
      const reads = api.find((s) => actionsOf(s).includes('s3:GetObject'))!;
      expect(JSON.stringify(reads.Resource)).toContain('/sessions/*');
      expect(api).toContainEqual(expect.objectContaining({ Action: 's3:ListBucket' }));
      expect(JSON.stringify(reads.Resource)).toContain('/runner/*');
      const runnerWrites = statementsOfRole(logicalId(template, 'AWS::IAM::Role', 'RunnerTaskRole')).find((s) => actionsOf(s).includes('s3:PutObject'))!;
      expect(JSON.stringify(runnerWrites.Resource)).toContain('/runner/*');
    });
  });
});
