import { awsRoot } from '../adapters/aws/index.ts';
import { expiredSessionsIn, removeExpiredSessionObjects, type TableStreamRecord } from '../steps/expired-sessions.ts';
import type { StepPorts } from '../steps/step-ports.ts';
import { logger, type LambdaInvocationContext } from './shared/step-handler.ts';

/**
 * The entry point on `ports`: the sessions the table's TTL removed in this stream batch lose
 * their stored objects. A failure throws, so Lambda retries the batch (removal is idempotent).
 */
export function sessionExpiredHandler(ports: () => Pick<StepPorts, 'sessions' | 'artifacts'>) {
  return async (event: { Records?: TableStreamRecord[] }, context?: LambdaInvocationContext): Promise<{ removed: string[] }> => {
    if (context) logger.addContext(context);
    logger.resetKeys();
    const expired = expiredSessionsIn(event.Records ?? []);
    const removed = expired.length > 0 ? await removeExpiredSessionObjects(ports(), expired) : [];
    logger.info('expired sessions cleaned up', { expired: expired.map((s) => s.name), removed });
    return { removed };
  };
}

/** Invoked by the table's stream (filtered to TTL removals of session items: lib/constructs/session-expiry.ts). */
export const handler = sessionExpiredHandler(() => awsRoot().stepPorts());
