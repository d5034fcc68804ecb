import { DEFAULT_IMAGE_BUCKET } from '../core/images/manifest.ts';
import { readRunDocument } from '../core/workflow/run-document-store.ts';
import { cleanup } from './cleanup.ts';
import { failSession, removeResults } from './fail-session.ts';
import type { StepPorts } from './step-ports.ts';

/** How an execution ended without passing through the failure path (the statuses the rule passes). */
export const ENDED_EXECUTION_STATUSES = ['ABORTED', 'TIMED_OUT', 'FAILED'] as const;

/** What an `Execution Status Change` event says of the ended execution. */
export interface EndedExecution {
  executionArn?: string | undefined;
  name: string;
  status: (typeof ENDED_EXECUTION_STATUSES)[number];
  /** The execution's input as JSON; Step Functions leaves it out above 256 KB. */
  input?: string | null | undefined;
  error?: string | null | undefined;
  cause?: string | null | undefined;
}

/** What the clean-up touches: the steps' ports, the session's runner tasks and its image wait. */
export interface ExecutionEndedPorts {
  steps: StepPorts;
  runners: { stopSession(session: string, reason: string): Promise<string[]> };
  waits: { remove(session: string): Promise<void> };
}

/** What the clean-up did (returned and logged). */
export interface ExecutionEndedOutcome {
  session: string;
  status: EndedExecution['status'];
  stopped_tasks: string[];
  /** The recorded failure, or why none was recorded. */
  recorded: string;
}

/** The execution is named after the session (`<name>` or `<name>_<ms>`) and its input is `{"session": name}`. */
export function endedSession(execution: EndedExecution): string {
  try {
    const input = JSON.parse(execution.input ?? '') as { session?: unknown };
    if (typeof input.session === 'string' && input.session) return input.session;
  } catch {
    // no input in the event (Step Functions leaves it out above 256 KB): the name says it
  }
  return execution.name.replace(/_\d+$/, '');
}

/** The failure reason recorded for the session and given to the runner task it stops. */
export function endedReason(execution: EndedExecution): string {
  if (execution.status === 'TIMED_OUT') return 'the workflow exceeded its time limit and was stopped';
  if (execution.status === 'ABORTED') return execution.cause ? `the workflow was stopped: ${execution.cause}` : 'the workflow was stopped';
  return execution.cause || execution.error || 'the workflow failed';
}

/** A deleted session's results, named by the control-plane run document RenderInventory left (the record is gone). */
async function resultsFromRunDocument(ports: StepPorts, session: string): Promise<Array<{ result_id: string; upload_prefix: string }>> {
  const document = await readRunDocument(ports.artifacts, session);
  return (document?.images ?? []).map((i) => ({ result_id: i.result_id, upload_prefix: `${DEFAULT_IMAGE_BUCKET}/${i.result_id}/` }));
}

/**
 * The failure path for executions that skipped it: StopExecution (a deleted session), the
 * execution's own timeout, or a failure of FailSession itself. Stops the session's runner task,
 * records the failure (a session that already completed keeps its outcome), removes its staged
 * uploads (from the run document when the record was deleted), the run document and its open
 * image wait. Every part is idempotent, so a redelivered event does no harm.
 */
export async function cleanUpEndedExecution(ports: ExecutionEndedPorts, execution: EndedExecution): Promise<ExecutionEndedOutcome> {
  const session = endedSession(execution);
  const reason = endedReason(execution);

  const record = await ports.steps.sessions.get(session);
  // A session deleted and created again under its name runs a newer execution (`<name>_<ms>`):
  // its task, record, run document and wait are not this execution's to clean up.
  const job = record?.status.session.job;
  if (job && execution.executionArn && job !== execution.executionArn) {
    return { session, status: execution.status, stopped_tasks: [], recorded: `a newer execution (${job}) belongs to the session; nothing cleaned up` };
  }
  const stopped = await ports.runners.stopSession(session, reason);
  await ports.waits.remove(session);
  let recorded: string;
  if (record) {
    const failure = await failSession(ports.steps, { session, reason });
    recorded = failure ? `${failure.step}: ${failure.reason}` : 'the session was deleted meanwhile';
    if (record.status.session.status === 'complete') recorded = `already complete (succeeded: ${record.status.session.succeeded})`;
  } else {
    // No record, so no plan: the run document names the results.
    await removeResults(ports.steps, await resultsFromRunDocument(ports.steps, session));
    recorded = 'the session was deleted; its staged uploads were removed';
  }
  // The runner task has stopped (stopSession waits for it), so nothing of this run writes any
  // more: a deleted session's clean-up removes its documents, logs and runner prefix for good.
  const ended = execution.executionArn ? { job: execution.executionArn } : {};
  await cleanup(record ? { artifacts: ports.steps.artifacts } : { artifacts: ports.steps.artifacts, sessions: ports.steps.sessions }, { session, ...ended });
  return { session, status: execution.status, stopped_tasks: stopped, recorded };
}
