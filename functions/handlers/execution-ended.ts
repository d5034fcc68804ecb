import { ECSClient } from '@aws-sdk/client-ecs';
import { z } from 'zod';
import { awsRoot } from '../adapters/aws/index.ts';
import { requireSetting } from '../adapters/aws/settings.ts';
import { EcsRunnerTasks } from '../adapters/aws/ecs-runner-tasks.ts';
import { ValidationError } from '../core/errors.ts';
import { sessionKeys } from '../core/workflow/session-keys.ts';
import { runDocumentSchema } from '../runner/run-document.ts';
import { cleanup } from '../steps/cleanup.ts';
import { failSession, removeResults } from '../steps/fail-session.ts';
import type { StepPorts } from '../steps/step-ports.ts';
import { logger, type LambdaInvocationContext } from './shared/step-handler.ts';

/** EventBridge's `Step Functions Execution Status Change` (the rule passes only these statuses). */
const statusChange = z.object({
  detail: z.object({
    executionArn: z.string().min(1).optional(),
    name: z.string().min(1),
    status: z.enum(['ABORTED', 'TIMED_OUT', 'FAILED']),
    input: z.string().nullish(),
    error: z.string().nullish(),
    cause: z.string().nullish(),
  }),
});

/** What the clean-up touches: the steps' ports, the session's runner tasks and its image wait. */
export interface ExecutionEndedDeps {
  steps: StepPorts;
  runners: { stopSession(session: string, reason: string): Promise<string[]> };
  waits: { remove(session: string): Promise<void> };
}

/** What the clean-up did (returned and logged). */
export interface ExecutionEndedOutcome {
  session: string;
  status: 'ABORTED' | 'TIMED_OUT' | 'FAILED';
  stopped_tasks: string[];
  /** The recorded failure, or why none was recorded. */
  recorded: string;
}

/** The execution is named after the session (`<name>` or `<name>_<ms>`) and its input is `{"session": name}`. */
function sessionOf(detail: z.infer<typeof statusChange>['detail']): string {
  try {
    const input = JSON.parse(detail.input ?? '') as { session?: unknown };
    if (typeof input.session === 'string' && input.session) return input.session;
  } catch {
    // no input in the event (Step Functions leaves it out above 256 KB): the name says it
  }
  return detail.name.replace(/_\d+$/, '');
}

function reasonFor(detail: z.infer<typeof statusChange>['detail']): string {
  if (detail.status === 'TIMED_OUT') return 'the workflow exceeded its time limit and was stopped';
  if (detail.status === 'ABORTED') return detail.cause ? `the workflow was stopped: ${detail.cause}` : 'the workflow was stopped';
  return detail.cause || detail.error || 'the workflow failed';
}

/** A deleted session's results, named by the run document RenderInventory left (the record is gone). */
async function resultsFromRunDocument(ports: StepPorts, session: string): Promise<Array<{ result_id: string; upload_prefix: string }>> {
  const key = sessionKeys.runDocument(session);
  if (!(await ports.artifacts.head(key))) return [];
  const chunks: Buffer[] = [];
  for await (const chunk of await ports.artifacts.get(key)) chunks.push(Buffer.from(chunk as Buffer));
  try {
    const parsed = runDocumentSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    return parsed.success ? parsed.data.images.map((i) => ({ result_id: i.result_id, upload_prefix: i.upload_prefix })) : [];
  } catch {
    return [];
  }
}

/**
 * The failure path for executions that skipped it: StopExecution (a deleted session), the
 * execution's own timeout, or a failure of FailSession itself. Stops the session's runner task,
 * records the failure (a session that already completed keeps its outcome), removes its staged
 * uploads (from the run document when the record was deleted), the run document and its open
 * image wait. Every part is idempotent, so a redelivered event does no harm.
 */
export async function cleanUpEndedExecution(deps: ExecutionEndedDeps, event: unknown): Promise<ExecutionEndedOutcome> {
  const parsed = statusChange.safeParse(event);
  if (!parsed.success) throw new ValidationError('the clean-up takes a Step Functions Execution Status Change event (ABORTED, TIMED_OUT or FAILED)', 'event');
  const { detail } = parsed.data;
  const session = sessionOf(detail);
  const reason = reasonFor(detail);

  const record = await deps.steps.sessions.get(session);
  // A session deleted and created again under its name runs a newer execution (`<name>_<ms>`):
  // its task, record, run document and wait are not this execution's to clean up.
  const job = record?.status.session.job;
  if (job && detail.executionArn && job !== detail.executionArn) {
    return { session, status: detail.status, stopped_tasks: [], recorded: `a newer execution (${job}) belongs to the session; nothing cleaned up` };
  }
  const stopped = await deps.runners.stopSession(session, reason);
  await deps.waits.remove(session);
  let recorded: string;
  if (record) {
    const failure = await failSession(deps.steps, { session, reason });
    recorded = failure ? `${failure.step}: ${failure.reason}` : 'the session was deleted meanwhile';
    if (record.status.session.status === 'complete') recorded = `already complete (succeeded: ${record.status.session.succeeded})`;
  } else {
    // No record, so no plan: the run document names the results.
    await removeResults(deps.steps, await resultsFromRunDocument(deps.steps, session));
    recorded = 'the session was deleted; its staged uploads were removed';
  }
  await cleanup({ artifacts: deps.steps.artifacts }, { session });
  return { session, status: detail.status, stopped_tasks: stopped, recorded };
}

let runners: EcsRunnerTasks | undefined;

/** Invoked by the rule on this state machine's ABORTED, TIMED_OUT and FAILED executions. */
export async function handler(event: unknown, context?: LambdaInvocationContext): Promise<ExecutionEndedOutcome> {
  if (context) logger.addContext(context);
  logger.resetKeys();
  const root = awsRoot();
  // The ECS client lives here, not in the composition root, so only this bundle carries it.
  runners ??= new EcsRunnerTasks(new ECSClient({}), requireSetting(root.settings, 'runnerCluster'));
  const outcome = await cleanUpEndedExecution({ steps: root.stepPorts(), runners, waits: root.waits() }, event);
  logger.info('ended execution cleaned up', { ...outcome });
  return outcome;
}
