import { DescribeStateMachineCommand, SendTaskSuccessCommand, StartExecutionCommand, StopExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import type { SessionRecord } from '../../core/model/session.ts';
import type { SessionStore } from '../../ports/session-store.ts';
import type { WorkflowStarter } from '../../ports/workflow-starter.ts';
import type { ImageWait } from '../../steps/wait-for-images.ts';
import { errorName, rethrowSdkError } from './sdk-errors.ts';

const TRANSIENT = new Set(['ThrottlingException', 'ServiceUnavailable', 'InternalServerError', 'ExecutionLimitExceeded', 'TimeoutError', 'RequestTimeout']);
/** A token that can no longer be answered: the wait already ended (timeout, stop, an earlier wake). */
const TOKEN_GONE = new Set(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken']);

function translate(error: unknown, what: string): never {
  return rethrowSdkError(error, TRANSIENT, 'Step Functions', what);
}

/** A session's open image wait (DynamoDbImageWaitStore). */
export interface ImageWaitLookup {
  get(session: string): Promise<ImageWait | undefined>;
  /** Removes the wait; with `token`, only while it is still that wait (a newer one stays). */
  remove(session: string, token?: string): Promise<void>;
}

/** `arn:...:stateMachine:<machine>` + execution name -> `arn:...:execution:<machine>:<name>`. */
export function executionArn(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

/**
 * Starts, stops and wakes session workflows on AWS Step Functions. The execution is named after
 * the session, so a retried StartExecution (same name, same input) returns the running execution
 * instead of starting a second one. Execution names stay taken for 90 days after an execution
 * ends, so a session created again under the name of a deleted one gets `<name>_<start time in
 * ms>` (underscores never occur in session names), unique to that incarnation and just as
 * idempotent.
 */
export class SfnWorkflowStarter implements WorkflowStarter {
  constructor(
    private readonly client: SFNClient,
    private readonly stateMachineArn: string,
    private readonly waits: ImageWaitLookup,
    private readonly sessions: Pick<SessionStore, 'get'>,
  ) {}

  /** A new session's execution is named after it (see `start`); a reused name gets another, which `start` returns. */
  plannedJob(session: SessionRecord): string {
    return executionArn(this.stateMachineArn, session.name);
  }

  async start(sessionName: string): Promise<string> {
    const started = await this.startNamed(sessionName, sessionName);
    if (started) return started;
    const session = await this.sessions.get(sessionName);
    const stamp = session ? Date.parse(session.status.session.start_time) : Number.NaN;
    if (!Number.isFinite(stamp)) throw new Error(`session '${sessionName}' has no start time to name its execution by`);
    const name = `${sessionName}_${stamp}`;
    // Taken as well: this very incarnation already ran to its end; that execution is its job.
    return (await this.startNamed(sessionName, name)) ?? executionArn(this.stateMachineArn, name);
  }

  /** The execution's ARN, or undefined when a closed execution holds the name. */
  private async startNamed(sessionName: string, name: string): Promise<string | undefined> {
    try {
      const out = await this.client.send(
        new StartExecutionCommand({ stateMachineArn: this.stateMachineArn, name, input: JSON.stringify({ session: sessionName }) }),
      );
      return out.executionArn ?? executionArn(this.stateMachineArn, name);
    } catch (error) {
      if (errorName(error) === 'ExecutionAlreadyExists') return undefined;
      translate(error, `starting the workflow of session '${sessionName}'`);
    }
  }

  /**
   * Stops the execution; Step Functions stops the runner's ECS task with it (`.sync`). The
   * session's open image wait, if any, is dropped. A finished or unknown execution is a no-op.
   */
  async stop(sessionName: string, executionId: string): Promise<void> {
    try {
      await this.client.send(
        new StopExecutionCommand({ executionArn: executionId, error: 'SessionCancelledError', cause: `session '${sessionName}' was deleted while it ran` }),
      );
    } catch (error) {
      if (errorName(error) !== 'ExecutionDoesNotExist') translate(error, `stopping the workflow of session '${sessionName}'`);
    }
    await this.waits.remove(sessionName);
  }

  /**
   * Health: Step Functions answers for the state machine sessions start, and it is ACTIVE (one
   * DescribeStateMachine; a deleted or unreachable machine fails here, not at the next create).
   */
  async checkHealth(): Promise<void> {
    let status: string | undefined;
    try {
      status = (await this.client.send(new DescribeStateMachineCommand({ stateMachineArn: this.stateMachineArn }))).status;
    } catch (error) {
      translate(error, 'describing the state machine');
    }
    if (status !== 'ACTIVE') throw new Error(`the state machine is ${status ?? 'in no known state'}, not ACTIVE`);
  }

  /**
   * Ends the session's WaitForImages state at once (SendTaskSuccess with its recorded token), so
   * it validates again. False when the session was not waiting or its wait had already ended.
   */
  async wake(sessionName: string): Promise<boolean> {
    const wait = await this.waits.get(sessionName);
    if (!wait) return false;
    let woken = true;
    try {
      await this.client.send(new SendTaskSuccessCommand({ taskToken: wait.token, output: JSON.stringify({ woken: true }) }));
    } catch (error) {
      // A passing fault keeps the record, so a retried wake can still send the token.
      if (!TOKEN_GONE.has(errorName(error))) translate(error, `waking session '${sessionName}'`);
      woken = false;
    }
    await this.waits.remove(sessionName, wait.token);
    return woken;
  }
}
