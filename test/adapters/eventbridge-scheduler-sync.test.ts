import { CreateScheduleCommand, DeleteScheduleCommand, SchedulerClient, UpdateScheduleCommand } from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAwsRoot } from '../../functions/adapters/aws/index.ts';
import { EventBridgeSchedulerSync } from '../../functions/adapters/aws/eventbridge-scheduler-sync.ts';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { createApp } from '../../functions/api/app.ts';
import { TransientError } from '../../functions/core/errors.ts';

const TABLE = 'cfs-scheduler-test';
const GROUP = 'CfsImageCustomization-automations';
const TARGET = 'arn:aws:lambda:eu-west-1:123456789012:function:cfs-trigger';
const ROLE = 'arn:aws:iam::123456789012:role/cfs-scheduler';
const DLQ = 'arn:aws:sqs:eu-west-1:123456789012:cfs-trigger-dlq';
const COMMIT = 'a'.repeat(40);

function awsError(name: string, status = 400): Error {
  return Object.assign(new Error(`${name} from the mock`), { name, $metadata: { httpStatusCode: status } });
}

const automation = (schedule?: { expression: string; timezone: string }) => ({
  configuration_name: 'compute-config',
  source: { name_pattern: 'compute-base-*' },
  groups: ['Compute'],
  on_image_registered: false,
  ...(schedule ? { schedule } : {}),
});

/**
 * The API Lambda's schedule management: the AWS composition root's ports (automations on the
 * table in dynalite) with the Scheduler client mocked, driven through the API's automation routes.
 */
describe('automation schedules on EventBridge Scheduler, through the API', () => {
  let dynamo: LocalDynamo;
  const scheduler = mockClient(SchedulerClient);
  const saved = { ...process.env };

  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: TABLE });
    Object.assign(process.env, { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint });
  });
  afterAll(async () => {
    process.env = saved;
    scheduler.restore();
    await dynamo.close();
  });
  beforeEach(() => scheduler.reset());

  function app() {
    const ports = createAwsRoot({
      [AWS_ENV.TABLE_NAME]: TABLE,
      [AWS_ENV.ARTIFACT_BUCKET]: 'cfs-artifacts',
      [AWS_ENV.EVENT_BUS_NAME]: 'cfs-events',
      [AWS_ENV.STATE_MACHINE_ARN]: 'arn:aws:states:eu-west-1:123456789012:stateMachine:cfs-sessions',
      [AWS_ENV.SCHEDULE_GROUP_NAME]: GROUP,
      [AWS_ENV.SCHEDULE_TARGET_ARN]: TARGET,
      [AWS_ENV.SCHEDULE_ROLE_ARN]: ROLE,
      [AWS_ENV.SCHEDULE_DEAD_LETTER_ARN]: DLQ,
    }, { scheduler: () => new SchedulerClient({}) }).appPorts();
    return { app: createApp(ports), ports };
  }
  const send = (a: ReturnType<typeof createApp>, method: string, path: string, body?: unknown) =>
    a.request(`http://localhost/apis/cfs/v3${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });

  it('creates the schedule with the expression, time zone, trigger target, role and input on the first PUT, updates it on the next, deletes it on DELETE', async () => {
    // Arrange
    const { app: api, ports } = app();
    await ports.configurations.put({ name: 'compute-config', last_updated: '', layers: [{ name: 'site', clone_url: 'https://git.example/site.git', playbook: 'site.yml', commit: COMMIT }] });
    scheduler.on(UpdateScheduleCommand).rejectsOnce(awsError('ResourceNotFoundException', 404)).resolves({});
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: `arn:aws:scheduler:eu-west-1:123456789012:schedule/${GROUP}/nightly` });
    scheduler.on(DeleteScheduleCommand).resolves({});
    // Act
    const created = await send(api, 'PUT', '/automations/nightly', automation({ expression: 'cron(0 3 * * ? *)', timezone: 'Europe/Oslo' }));
    const updated = await send(api, 'PUT', '/automations/nightly', automation({ expression: 'rate(6 hours)', timezone: 'UTC' }));
    const deleted = await send(api, 'DELETE', '/automations/nightly');
    // Assert
    expect([created.status, updated.status, deleted.status]).toEqual([200, 200, 204]);
    const creates = scheduler.commandCalls(CreateScheduleCommand).map((c) => c.args[0].input);
    expect(creates).toHaveLength(1);
    expect(creates[0]).toMatchObject({
      Name: 'nightly',
      GroupName: GROUP,
      ScheduleExpression: 'cron(0 3 * * ? *)',
      ScheduleExpressionTimezone: 'Europe/Oslo',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: TARGET, RoleArn: ROLE, Input: '{"automation":"nightly"}', DeadLetterConfig: { Arn: DLQ } },
    });
    const updates = scheduler.commandCalls(UpdateScheduleCommand).map((c) => c.args[0].input);
    expect(updates).toHaveLength(2);
    expect(updates[1]).toMatchObject({ Name: 'nightly', GroupName: GROUP, ScheduleExpression: 'rate(6 hours)', ScheduleExpressionTimezone: 'UTC', Target: { Arn: TARGET, RoleArn: ROLE, Input: '{"automation":"nightly"}' } });
    expect(scheduler.commandCalls(DeleteScheduleCommand).map((c) => c.args[0].input)).toEqual([{ Name: 'nightly', GroupName: GROUP }]);
  });

  it('deletes the schedule when a PUT takes the schedule away, and a missing schedule is no error', async () => {
    // Arrange
    const { app: api, ports } = app();
    await ports.configurations.put({ name: 'compute-config', last_updated: '', layers: [{ name: 'site', clone_url: 'https://git.example/site.git', playbook: 'site.yml', commit: COMMIT }] });
    scheduler.on(DeleteScheduleCommand).rejects(awsError('ResourceNotFoundException', 404));
    // Act
    const stored = await send(api, 'PUT', '/automations/on-events-only', { ...automation(), on_image_registered: true });
    // Assert
    expect(stored.status).toBe(200);
    expect(scheduler.commandCalls(CreateScheduleCommand)).toHaveLength(0);
    expect(scheduler.commandCalls(DeleteScheduleCommand).map((c) => c.args[0].input)).toEqual([{ Name: 'on-events-only', GroupName: GROUP }]);
  });

  it('updates after a create that lost a race, and reports throttling as a transient error', async () => {
    // Arrange
    const sync = new EventBridgeSchedulerSync(new SchedulerClient({}), { groupName: GROUP, targetArn: TARGET, roleArn: ROLE });
    const record = { name: 'raced', ...automation({ expression: 'rate(1 day)', timezone: 'UTC' }), created: '', last_updated: '' } as Parameters<typeof sync.armed>[0];
    scheduler.on(UpdateScheduleCommand).rejectsOnce(awsError('ResourceNotFoundException', 404)).resolvesOnce({}).rejects(awsError('ThrottlingException', 429));
    scheduler.on(CreateScheduleCommand).rejects(awsError('ConflictException', 409));
    // Act
    await sync.armed(record);
    const throttled = sync.armed(record);
    // Assert
    await expect(throttled).rejects.toBeInstanceOf(TransientError);
    expect(scheduler.commandCalls(UpdateScheduleCommand)).toHaveLength(3);
    expect(scheduler.commandCalls(CreateScheduleCommand)[0]!.args[0].input.Target).not.toHaveProperty('DeadLetterConfig');
  });
});
