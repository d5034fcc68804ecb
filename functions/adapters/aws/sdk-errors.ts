import { TransientError } from '../../core/errors.ts';

/** Refused, reset or broken connections: worth a retry whatever the service. */
const CONNECTION_LOST = /ECONNREFUSED|ECONNRESET|socket hang up|EPIPE/;

/** The error's name as the SDK sets it (the service's exception name), or ''. */
export function errorName(error: unknown): string {
  return (error as { name?: string }).name ?? '';
}

/** Throttling and service faults (by name, or any 5xx status) and lost connections. */
export function isTransientSdkError(error: unknown, transientNames: ReadonlySet<string>): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
  return transientNames.has(errorName(error)) || status >= 500 || CONNECTION_LOST.test(String(error));
}

/**
 * Rethrows an SDK error: a transient one as TransientError (`<service> unavailable while <what>:
 * <name>`), retried by callers and the state machine; any other as it is.
 */
export function rethrowSdkError(error: unknown, transientNames: ReadonlySet<string>, service: string, what: string): never {
  if (isTransientSdkError(error, transientNames)) throw new TransientError(`${service} unavailable while ${what}: ${errorName(error) || String(error)}`);
  throw error;
}
