import { DescribeStateMachineCommand, SendTaskSuccessCommand, SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDbImageWaitStore } from '../../functions/adapters/dynamodb/dynamodb-image-wait-store.ts';
import { executionArn, SfnWorkflowStarter } from '../../functions/adapters/aws/sfn-workflow-starter.ts';
import { DynamoDbSessionStore } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import type { ImageWait } from '../../functions/steps/wait-for-images.ts';

const MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:cfs-sessions';
const TABLE = 'sfn-test';

function sfnError(name: string, status = 400): Error {
  return Object.assign(new Error(`${name} from the mock`), { name, $metadata: { httpStatusCode: status } });
}

function session(name: string, startTime: string): SessionRecord {
  return {
    name,
    configuration: { name: 'c', limit: '' },
    ansible: { config: '', limit: '', verbosity: 0, passthrough: '' },
    target: { definition: 'image', groups: [{ name: 'Compute', members: ['00000000-0000-4000-8000-000000000001'] }], image_map: [] },
    tags: {},
    debug_on_failure: false,
    status: { session: { status: 'pending', succeeded: 'none', start_time: startTime }, artifacts: [], layers: [] },
  };
}

function wait(sessionName: string, token: string): ImageWait {
  return { session: sessionName, token, missing: ['img-1'], recorded_at: '2026-11-26T10:00:00Z', expires_at: 1_900_000_000 };
}

describe('SfnWorkflowStarter', () => {
  const sfn = mockClient(SFNClient);
  let dynamo: LocalDynamo;
  let waits: DynamoDbImageWaitStore;
  let sessions: DynamoDbSessionStore;
  let starter: SfnWorkflowStarter;

  beforeAll(async () => {
    dynamo = await startLocalDynamo({ tableName: TABLE });
    waits = new DynamoDbImageWaitStore(dynamo.documents, TABLE);
    sessions = new DynamoDbSessionStore(dynamo.documents, TABLE);
  });
  afterAll(async () => {
    sfn.restore();
    await dynamo.close();
  });
  beforeEach(() => {
    sfn.reset();
    starter = new SfnWorkflowStarter(new SFNClient({ region: 'eu-west-1' }), MACHINE, waits, sessions);
  });

  it('starts an execution named after the session with the session as its input', async () => {
    // Arrange
    sfn.on(StartExecutionCommand).resolves({ executionArn: executionArn(MACHINE, 'example'), startDate: new Date() });
    // Act
    const id = await starter.start('example');
    // Assert
    expect(id).toBe('arn:aws:states:eu-west-1:123456789012:execution:cfs-sessions:example');
    expect(sfn.commandCalls(StartExecutionCommand)[0]!.args[0].input).toEqual({ stateMachineArn: MACHINE, name: 'example', input: '{"session":"example"}' });
  });

  it('returns the same execution when a start is retried while it runs (Step Functions answers a same-name start with it)', async () => {
    // Arrange: Step Functions returns the running execution for the same name and input.
    sfn.on(StartExecutionCommand, { name: 'retried' }).resolves({ executionArn: executionArn(MACHINE, 'retried'), startDate: new Date() });
    // Act
    const [first, second] = [await starter.start('retried'), await starter.start('retried')];
    // Assert
    expect(second).toBe(first);
    expect(sfn.commandCalls(StartExecutionCommand).every((call) => call.args[0].input.name === 'retried')).toBe(true);
  });

  it('gives a session re-created under a used name an execution of its own, named by its start time', async () => {
    // Arrange: an earlier session of this name ran to its end; its execution name stays taken.
    await sessions.create(session('reused', '2026-11-26T10:00:00Z'));
    const stamp = Date.parse('2026-11-26T10:00:00Z');
    sfn.on(StartExecutionCommand, { name: 'reused' }).rejects(sfnError('ExecutionAlreadyExists'));
    sfn.on(StartExecutionCommand, { name: `reused_${stamp}` }).resolves({ executionArn: executionArn(MACHINE, `reused_${stamp}`), startDate: new Date() });
    // Act
    const id = await starter.start('reused');
    // Assert
    expect(id).toBe(executionArn(MACHINE, `reused_${stamp}`));
    expect(sfn.commandCalls(StartExecutionCommand).map((c) => c.args[0].input.name)).toEqual(['reused', `reused_${stamp}`]);
  });

  it('maps an already existing execution of the same incarnation to its ARN', async () => {
    // Arrange
    await sessions.create(session('finished', '2026-11-26T11:00:00Z'));
    sfn.on(StartExecutionCommand).rejects(sfnError('ExecutionAlreadyExists'));
    // Act
    const id = await starter.start('finished');
    // Assert
    expect(id).toBe(executionArn(MACHINE, `finished_${Date.parse('2026-11-26T11:00:00Z')}`));
  });

  it('turns throttling into a TransientError and keeps other refusals as they are', async () => {
    // Arrange
    sfn.on(StartExecutionCommand, { name: 'throttled' }).rejects(sfnError('ThrottlingException'));
    sfn.on(StartExecutionCommand, { name: 'missing-machine' }).rejects(sfnError('StateMachineDoesNotExist'));
    // Act
    const throttled = starter.start('throttled');
    const missing = starter.start('missing-machine');
    // Assert
    await Promise.all([
      expect(throttled).rejects.toMatchObject({ name: 'TransientError' }),
      expect(missing).rejects.toMatchObject({ name: 'StateMachineDoesNotExist' }),
    ]);
  });

  it('stops the execution with a cause naming the session and drops its image wait', async () => {
    // Arrange
    await waits.put(wait('deleted', 'token-deleted'));
    sfn.on(StopExecutionCommand).resolves({ stopDate: new Date() });
    // Act
    await starter.stop('deleted', executionArn(MACHINE, 'deleted'));
    // Assert
    expect(sfn.commandCalls(StopExecutionCommand)[0]!.args[0].input).toMatchObject({ executionArn: executionArn(MACHINE, 'deleted'), error: 'SessionCancelledError' });
    expect(await waits.get('deleted')).toBeUndefined();
  });

  it('treats stopping an execution that does not exist as done', async () => {
    // Arrange
    sfn.on(StopExecutionCommand).rejects(sfnError('ExecutionDoesNotExist'));
    // Act
    const stopping = starter.stop('gone', executionArn(MACHINE, 'gone'));
    // Assert
    await expect(stopping).resolves.toBeUndefined();
  });

  it('wakes a waiting session by sending its recorded token back, once', async () => {
    // Arrange
    await waits.put(wait('waiting', 'token-1'));
    sfn.on(SendTaskSuccessCommand).resolves({});
    // Act
    const first = await starter.wake('waiting');
    const second = await starter.wake('waiting');
    // Assert
    expect([first, second]).toEqual([true, false]);
    expect(sfn.commandCalls(SendTaskSuccessCommand).map((c) => c.args[0].input.taskToken)).toEqual(['token-1']);
  });

  it('reports a wait that had already timed out as not woken and forgets it', async () => {
    // Arrange
    await waits.put(wait('late', 'token-late'));
    sfn.on(SendTaskSuccessCommand).rejects(sfnError('TaskTimedOut'));
    // Act
    const woken = await starter.wake('late');
    // Assert
    expect(woken).toBe(false);
    expect(await waits.get('late')).toBeUndefined();
  });

  it('keeps the wait when sending the token fails for a passing reason, so a retried wake can still end it', async () => {
    // Arrange
    await waits.put(wait('flaky', 'token-flaky'));
    sfn.on(SendTaskSuccessCommand).rejectsOnce(sfnError('ServiceUnavailable', 503)).resolves({});
    // Act
    const failed = starter.wake('flaky');
    // Assert
    await expect(failed).rejects.toMatchObject({ name: 'TransientError' });
    expect((await waits.get('flaky'))?.token).toBe('token-flaky');
    expect(await starter.wake('flaky')).toBe(true);
  });

  it('never removes a newer wait when an older token is answered', async () => {
    // Arrange: the session parked again (a new token) after the old one was read.
    await waits.put(wait('again', 'token-new'));
    // Act
    await waits.remove('again', 'token-old');
    // Assert
    expect((await waits.get('again'))?.token).toBe('token-new');
  });

  it('lists every open wait for the Image Registered trigger', async () => {
    // Arrange
    await waits.put(wait('listed-a', 'ta'));
    await waits.put(wait('listed-b', 'tb'));
    // Act
    const listed = (await waits.list()).map((w) => w.session);
    // Assert
    expect(listed).toEqual(expect.arrayContaining(['listed-a', 'listed-b']));
    expect(listed).toEqual([...listed].sort());
  });

  it('is healthy when Step Functions describes the state machine as ACTIVE, and asks about that machine only', async () => {
    // Arrange
    sfn.on(DescribeStateMachineCommand).resolves({ stateMachineArn: MACHINE, status: 'ACTIVE' } as never);
    // Act
    await starter.checkHealth();
    // Assert
    expect(sfn.commandCalls(DescribeStateMachineCommand).map((c) => c.args[0].input)).toEqual([{ stateMachineArn: MACHINE }]);
  });

  it('is unhealthy when the state machine is being deleted, saying so', async () => {
    // Arrange
    sfn.on(DescribeStateMachineCommand).resolves({ stateMachineArn: MACHINE, status: 'DELETING' } as never);
    // Act
    const checking = starter.checkHealth();
    // Assert
    await expect(checking).rejects.toThrow('the state machine is DELETING, not ACTIVE');
  });

  it('is unhealthy when Step Functions refuses (its error as it is) or fails (a TransientError)', async () => {
    // Arrange
    sfn.on(DescribeStateMachineCommand).rejectsOnce(sfnError('AccessDeniedException', 403)).rejectsOnce(sfnError('ThrottlingException'));
    // Act
    const denied = await starter.checkHealth().catch((error: Error) => error);
    const throttled = await starter.checkHealth().catch((error: Error) => error);
    // Assert
    expect((denied as Error).name).toBe('AccessDeniedException');
    expect((throttled as Error).name).toBe('TransientError');
    expect((throttled as Error).message).toBe('Step Functions unavailable while describing the state machine: ThrottlingException');
  });
});
