import { DescribeTasksCommand, ECSClient, ListTasksCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EcsRunnerTasks } from '../../functions/adapters/aws/ecs-runner-tasks.ts';
import type { StagedImage } from '../../functions/core/model/session.ts';
import { runnerKeys, sessionKeys } from '../../functions/core/workflow/session-keys.ts';
import { cleanUpEndedExecution, type EndedExecution, type ExecutionEndedPorts } from '../../functions/steps/execution-ended.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';
import { imageWaitTable } from '../helpers/image-wait-table.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { suiteMock } from '../helpers/suite-mock.ts';

const TABLE = 'cfs-ended-test';
const CLUSTER = 'arn:aws:ecs:eu-west-1:123456789012:cluster/cfs-runner';
const SOURCE = '11111111-1111-4111-8111-111111111111';
const RESULT = '99999999-9999-4999-8999-999999999999';
const SHA = 'c'.repeat(64);

const staged: StagedImage = {
  image_id: SOURCE,
  source_name: 'base',
  arch: 'x86_64',
  rootfs: { key: `boot-images/${SOURCE}/rootfs`, size: 1, sha256: SHA, md5: 'd'.repeat(32) },
  result_name: 'base-custom',
  result_id: RESULT,
  upload_prefix: `boot-images/${RESULT}/`,
};

const TOKEN = 'e'.repeat(32);
const RUNNER = runnerKeys(TOKEN);

/** The control-plane run document RenderInventory leaves: every key the runner writes under its prefix. */
const runDocument = {
  ...runDocumentFor('s1', RUNNER, { image: SOURCE, layer: 'site', playbook: 'site.yml', cloneUrl: 'https://git.example/site.git', result: RESULT }),
  progress_key: RUNNER.progress,
};

const executionArn = (name: string) => `arn:aws:states:eu-west-1:123456789012:execution:cfs-sessions:${name}`;

/** What a status change event says of the execution named `name`. */
function ended(status: EndedExecution['status'], name: string, extra: Partial<EndedExecution> = {}): EndedExecution {
  return { executionArn: executionArn(name), name, status, input: null, ...extra };
}

/** A stored session whose workflow job is the execution named after it. */
function sessionOfExecution(name: string, execution = name) {
  const record = pendingSession(name, { Compute: [SOURCE] });
  record.status.session.job = executionArn(execution);
  return record;
}

/**
 * The execution-ended step: the failure path for executions that skipped it. Session records and
 * the artifact store in memory and on disk, image waits on dynalite, ECS mocked.
 */
describe('the execution-ended clean-up step', () => {
  const table = imageWaitTable(TABLE);
  let ports: FakeStepPorts;
  let deps: ExecutionEndedPorts;
  const ecs = suiteMock(ECSClient);

  beforeEach(() => {
    ports = fakeStepPorts();
    deps = { steps: ports, runners: new EcsRunnerTasks(new ECSClient({}), CLUSTER, { pollMs: 20, stopWaitMs: 1_000 }), waits: table.waits };
    ecs.on(ListTasksCommand).resolvesOnce({ taskArns: ['task-1'], nextToken: 'page-2' }).resolves({ taskArns: ['task-2'] });
    ecs.on(DescribeTasksCommand).resolves({
      tasks: [
        { taskArn: 'task-1', overrides: { containerOverrides: [{ name: 'runner', environment: [{ name: 'SESSION_NAME', value: 'other' }] }] } },
        { taskArn: 'task-2', overrides: { containerOverrides: [{ name: 'runner', environment: [{ name: 'SESSION_NAME', value: 's1' }] }] } },
      ],
    });
    // The stopped task, asked about alone, has stopped.
    ecs.on(DescribeTasksCommand, { tasks: ['task-2'] }).resolves({ tasks: [{ taskArn: 'task-2', lastStatus: 'STOPPED' }] });
    ecs.on(StopTaskCommand).resolves({});
  });
  afterEach(() => ports.dispose());

  it('on ABORTED stops the session\'s runner task, records the failure, removes staged uploads, the run document and the image wait', async () => {
    // Arrange
    await registerImage(ports, SOURCE, 'base');
    const running = sessionOfExecution('s1');
    running.status.session.status = 'running';
    running.status.plan = [staged];
    await ports.sessionTable.create(running);
    await ports.artifacts.put(`boot-images/${RESULT}/rootfs`, 'half promoted');
    await ports.artifacts.put(`${RUNNER.resultPrefix(RESULT)}kernel`, 'half an upload');
    await ports.artifacts.put(RUNNER.logsPrefix + '0-site.log', 'the layer log');
    await ports.artifacts.put(sessionKeys.runDocument('s1'), JSON.stringify(runDocument));
    await ports.artifacts.put(RUNNER.runDocument, JSON.stringify(runDocument));
    await table.waits.put({ session: 's1', token: 't', missing: [], recorded_at: '2026-11-26T10:00:00Z', expires_at: 2_000_000_000 });
    // Act
    const outcome = await cleanUpEndedExecution(deps, ended('ABORTED', 's1', { input: '{"session":"s1"}', cause: "session 's1' was cancelled" }));
    // Assert
    expect(outcome.stopped_tasks).toEqual(['task-2']);
    expect(ecs.commandCalls(StopTaskCommand).map((c) => c.args[0].input)).toEqual([{ cluster: CLUSTER, task: 'task-2', reason: "the workflow was stopped: session 's1' was cancelled" }]);
    const record = await ports.sessions.get('s1');
    expect(record?.status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
    expect(record?.status.failure?.reason).toBe("the workflow was stopped: session 's1' was cancelled");
    expect(await ports.artifacts.list(`boot-images/${RESULT}/`)).toEqual([]);
    // The runner's copy and uploads go; the session's record (its logs, and the document naming them) stays.
    expect(await ports.artifacts.list(RUNNER.prefix)).toEqual([`${RUNNER.logsPrefix}0-site.log`]);
    expect(await ports.artifacts.head(sessionKeys.runDocument('s1'))).toBeDefined();
    expect(await table.waits.get('s1')).toBeUndefined();
  });

  it('for a deleted session finds the staged uploads in the run document (execution named <name>_<ms>) and removes them', async () => {
    // Arrange
    await ports.artifacts.put(`boot-images/${RESULT}/rootfs`, 'half promoted');
    await ports.artifacts.put(`${RUNNER.resultPrefix(RESULT)}kernel`, 'half an upload');
    await ports.artifacts.put(RUNNER.logsPrefix + '0-site.log', 'the layer log');
    await ports.artifacts.put(RUNNER.runDocument, JSON.stringify(runDocument));
    await ports.artifacts.put(sessionKeys.runDocument('s1'), JSON.stringify(runDocument));
    // Act
    const outcome = await cleanUpEndedExecution(deps, ended('ABORTED', 's1_1764151200000'));
    // Assert
    expect(outcome).toMatchObject({ session: 's1', stopped_tasks: ['task-2'], recorded: 'the session was deleted; its staged uploads were removed' });
    expect(await ports.artifacts.list(`boot-images/${RESULT}/`)).toEqual([]);
    // No record reads its logs any more: the runner's whole prefix goes.
    expect(await ports.artifacts.list(RUNNER.prefix)).toEqual([]);
  });

  it("removes a deleted session's runner prefix only once its task has stopped, with what the runner wrote while stopping", async () => {
    // Arrange: on SIGTERM the runner writes its last log and its outcome, then its task stops.
    await ports.artifacts.put(RUNNER.runDocument, JSON.stringify(runDocument));
    await ports.artifacts.put(sessionKeys.runDocument('s1'), JSON.stringify(runDocument));
    let polls = 0;
    ecs.on(DescribeTasksCommand, { tasks: ['task-2'] }).callsFake(async () => {
      polls += 1;
      if (polls === 1) {
        await ports.artifacts.put(RUNNER.outcome, '{"status": "failed"}');
        await ports.artifacts.put(RUNNER.logsPrefix + '0-site.log', 'the last lines');
        return { tasks: [{ taskArn: 'task-2', lastStatus: 'DEACTIVATING' }] };
      }
      return { tasks: [{ taskArn: 'task-2', lastStatus: 'STOPPED' }] };
    });
    // Act
    const outcome = await cleanUpEndedExecution(deps, ended('ABORTED', 's1_1764151200000'));
    // Assert
    expect(outcome.stopped_tasks).toEqual(['task-2']);
    expect(polls).toBe(2);
    expect(await ports.artifacts.list(RUNNER.prefix)).toEqual([]);
  });

  it('fails, removing nothing, when the stopped task has not stopped in time, so the clean-up is retried', async () => {
    // Arrange
    await ports.artifacts.put(RUNNER.runDocument, JSON.stringify(runDocument));
    await ports.artifacts.put(sessionKeys.runDocument('s1'), JSON.stringify(runDocument));
    ecs.on(DescribeTasksCommand, { tasks: ['task-2'] }).resolves({ tasks: [{ taskArn: 'task-2', lastStatus: 'RUNNING' }] });
    // Act
    const cleaning = cleanUpEndedExecution(deps, ended('ABORTED', 's1_1764151200000'));
    // Assert
    await expect(cleaning).rejects.toThrow('runner task(s) task-2 did not stop within 1 s of StopTask; the clean-up will be retried');
    expect(await ports.artifacts.list(RUNNER.prefix)).toEqual([RUNNER.runDocument]);
  });

  it('on TIMED_OUT records the time limit as the reason', async () => {
    // Arrange
    await ports.sessionTable.create(sessionOfExecution('s1'));
    // Act
    await cleanUpEndedExecution(deps, ended('TIMED_OUT', 's1'));
    // Assert
    expect((await ports.sessions.get('s1'))?.status.failure?.reason).toBe('the workflow exceeded its time limit and was stopped');
  });

  it('on FAILED after the failure path already ran keeps the recorded outcome and leaves a succeeded session\'s results alone', async () => {
    // Arrange
    const done = sessionOfExecution('s1');
    done.status.session = { ...done.status.session, status: 'complete', succeeded: 'true' };
    done.status.plan = [staged];
    await ports.sessionTable.create(done);
    await ports.artifacts.put(`boot-images/${RESULT}/rootfs`, 'the result');
    // Act
    const outcome = await cleanUpEndedExecution(deps, ended('FAILED', 's1', { error: 'States.Runtime', cause: 'Cleanup failed' }));
    // Assert
    expect(outcome.recorded).toBe('already complete (succeeded: true)');
    expect((await ports.sessions.get('s1'))?.status.session.succeeded).toBe('true');
    expect(await ports.artifacts.list(`boot-images/${RESULT}/`)).toEqual([`boot-images/${RESULT}/rootfs`]);
  });

  it('leaves a session created again under the same name alone: its newer execution, task and uploads are not this one\'s', async () => {
    // Arrange
    const again = sessionOfExecution('s1', 's1_1764151200000');
    again.status.session.status = 'running';
    again.status.plan = [staged];
    await ports.sessionTable.create(again);
    await ports.artifacts.put(`boot-images/${RESULT}/rootfs`, 'the new upload');
    // Act
    const outcome = await cleanUpEndedExecution(deps, ended('ABORTED', 's1'));
    // Assert
    expect(outcome.stopped_tasks).toEqual([]);
    expect(ecs.commandCalls(StopTaskCommand)).toHaveLength(0);
    expect((await ports.sessions.get('s1'))?.status.session.status).toBe('running');
    expect(await ports.artifacts.list(`boot-images/${RESULT}/`)).toEqual([`boot-images/${RESULT}/rootfs`]);
  });
});
