import { Logger } from '@aws-lambda-powertools/logger';
import type { z } from 'zod';
import { ValidationError } from '../../core/errors.ts';

/** One structured logger per function instance (POWERTOOLS_SERVICE_NAME and POWERTOOLS_LOG_LEVEL come from lib/). */
export const logger = new Logger({ serviceName: 'cfs' });

/** The Lambda context, as Powertools reads it. */
export type LambdaInvocationContext = Parameters<Logger['addContext']>[0];

export interface StepHandlerOptions<Input extends { session: string }, Ports, Output> {
  /** The state's name in the ASL (logged, and named in input errors). */
  state: string;
  /** The state's input (its `Parameters`, or the Map's `ItemSelector`), checked before any work. */
  input: z.ZodType<Input>;
  /** The ports, from the composition root (built on first use, kept for the instance). */
  ports: () => Ports;
  run: (ports: Ports, input: Input) => Promise<Output>;
}

/**
 * Makes the Lambda entry point of a workflow step: parse the state's input, call the step with
 * the root's ports, return its result. A step's error leaves unchanged: Lambda reports its
 * `name` as the errorType that the ASL's Retry (TransientError) and Catch clauses match, and
 * its message reaches FailSession as the reason. An input the step does not accept is a
 * ValidationError (never retried), because the state machine and the step disagree.
 */
export function stepHandler<Input extends { session: string }, Ports, Output>(
  options: StepHandlerOptions<Input, Ports, Output>,
): (event: unknown, context?: LambdaInvocationContext) => Promise<Output> {
  return async (event, context) => {
    if (context) logger.addContext(context);
    const parsed = options.input.safeParse(event);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? issue.path.join('.') : 'input';
      throw new ValidationError(`${options.state}: the state machine passed an input this step does not accept: ${where}: ${issue?.message ?? 'invalid'}`, where);
    }
    logger.resetKeys();
    logger.appendKeys({ session: parsed.data.session, state: options.state });
    try {
      const output = await options.run(options.ports(), parsed.data);
      logger.info('step succeeded');
      return output;
    } catch (error) {
      logger.error('step failed', error as Error);
      throw error;
    }
  };
}
