import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executionEndedHandler } from '../../functions/handlers/execution-ended.ts';
import { logger } from '../../functions/handlers/shared/step-handler.ts';
import type { ExecutionEndedPorts } from '../../functions/steps/execution-ended.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

logger.setLogLevel('SILENT');

const executionArn = (name: string) => `arn:aws:states:eu-west-1:123456789012:execution:cfs-sessions:${name}`;

function statusChange(status: string, name: string, extra: Record<string, unknown> = {}) {
  return {
    source: 'aws.states',
    'detail-type': 'Step Functions Execution Status Change',
    detail: { executionArn: executionArn(name), name, status, input: null, ...extra },
  };
}

/**
 * The clean-up Lambda's entry point: it parses the status change and hands its detail to the
 * execution-ended step (test/steps/execution-ended.test.ts covers what the step does). Runner
 * tasks and image waits are hand-written fakes that record what they were asked.
 */
describe('the execution-ended clean-up Lambda', () => {
  let steps: FakeStepPorts;
  let stopped: Array<{ session: string; reason: string }>;
  let removedWaits: string[];
  let portsTaken: number;
  let handler: ReturnType<typeof executionEndedHandler>;

  beforeEach(() => {
    steps = fakeStepPorts();
    stopped = [];
    removedWaits = [];
    portsTaken = 0;
    const ports: ExecutionEndedPorts = {
      steps,
      runners: {
        stopSession: async (session, reason) => {
          stopped.push({ session, reason });
          return [`task-of-${session}`];
        },
      },
      waits: { remove: async (session) => void removedWaits.push(session) },
    };
    handler = executionEndedHandler(() => {
      portsTaken++;
      return ports;
    });
  });
  afterEach(() => steps.dispose());

  it('hands the event\'s execution to the step: the session from its input, the reason from its cause', async () => {
    // Arrange
    const record = pendingSession('s1', { Compute: [] });
    record.status.session.job = executionArn('s1');
    await steps.sessionTable.create(record);
    // Act
    const outcome = await handler(statusChange('ABORTED', 's1', { input: '{"session":"s1"}', cause: 'deleted by an operator' }));
    // Assert
    expect(outcome).toMatchObject({ session: 's1', status: 'ABORTED', stopped_tasks: ['task-of-s1'] });
    expect(stopped).toEqual([{ session: 's1', reason: 'the workflow was stopped: deleted by an operator' }]);
    expect(removedWaits).toEqual(['s1']);
    expect((await steps.sessions.get('s1'))?.status.failure?.reason).toBe('the workflow was stopped: deleted by an operator');
  });

  it('names a deleted session after its execution when the event carries no input', async () => {
    // Act
    const outcome = await handler(statusChange('TIMED_OUT', 's1_1764151200000'));
    // Assert
    expect(outcome).toEqual({ session: 's1', status: 'TIMED_OUT', stopped_tasks: ['task-of-s1'], recorded: 'the session was deleted; its staged uploads were removed' });
    expect(stopped).toEqual([{ session: 's1', reason: 'the workflow exceeded its time limit and was stopped' }]);
  });

  it('refuses an event of another kind with a ValidationError, before taking any port', async () => {
    // Act
    const invocation = handler(statusChange('SUCCEEDED', 's1'));
    // Assert
    await expect(invocation).rejects.toMatchObject({ name: 'ValidationError' });
    expect(portsTaken).toBe(0);
    expect(stopped).toEqual([]);
  });
});
