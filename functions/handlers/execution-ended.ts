import { z } from 'zod';
import { ecsRunnerTasks } from '../adapters/aws/ecs-root.ts';
import { awsRoot } from '../adapters/aws/index.ts';
import { ValidationError } from '../core/errors.ts';
import { cleanUpEndedExecution, ENDED_EXECUTION_STATUSES, type ExecutionEndedOutcome, type ExecutionEndedPorts } from '../steps/execution-ended.ts';
import { logger, type LambdaInvocationContext } from './shared/step-handler.ts';

/** EventBridge's `Step Functions Execution Status Change` (the rule passes only these statuses). */
const statusChange = z.object({
  detail: z.object({
    executionArn: z.string().min(1).optional(),
    name: z.string().min(1),
    status: z.enum(ENDED_EXECUTION_STATUSES),
    input: z.string().nullish(),
    error: z.string().nullish(),
    cause: z.string().nullish(),
  }),
});

/**
 * The entry point of the clean-up on `ports`: parses the status change, runs the
 * execution-ended step (functions/steps/execution-ended.ts) and logs what it did.
 */
export function executionEndedHandler(ports: () => ExecutionEndedPorts) {
  return async (event: unknown, context?: LambdaInvocationContext): Promise<ExecutionEndedOutcome> => {
    if (context) logger.addContext(context);
    logger.resetKeys();
    const parsed = statusChange.safeParse(event);
    if (!parsed.success) throw new ValidationError('the clean-up takes a Step Functions Execution Status Change event (ABORTED, TIMED_OUT or FAILED)', 'event');
    const outcome = await cleanUpEndedExecution(ports(), parsed.data.detail);
    logger.info('ended execution cleaned up', { ...outcome });
    return outcome;
  };
}

/** Invoked by the rule on this state machine's ABORTED, TIMED_OUT and FAILED executions. */
export const handler = executionEndedHandler(() => {
  const root = awsRoot();
  return { steps: root.stepPorts(), runners: ecsRunnerTasks(root.settings), waits: root.waits() };
});
