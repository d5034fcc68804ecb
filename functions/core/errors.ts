/**
 * Domain errors. Each `name` is a literal string and a contract: the state machine's
 * `Retry`/`Catch` clauses and the API's problem+json mapping match on it (STYLE.md habit 6).
 * Domain errors are never retried; only `TransientError` is.
 */

/** A request or document broke a rule; `field` names the offending field (JSON path style). */
export class ValidationError extends Error {
  override readonly name = 'ValidationError' as const;
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The named record does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError' as const;
  constructor(
    readonly kind: string,
    readonly id: string,
  ) {
    super(`${kind} '${id}' does not exist`);
  }
}

/** A record with that key exists already (also when two creates race). */
export class ConflictError extends Error {
  override readonly name = 'ConflictError' as const;
}

/** The operation is not allowed in the record's current state (e.g. deleting a configuration in use). */
export class InvalidStateError extends Error {
  override readonly name = 'InvalidStateError' as const;
}

/** Waiting for images went past the image wait timeout. */
export class ImageWaitTimeoutError extends Error {
  override readonly name = 'ImageWaitTimeoutError' as const;
}

/** Bytes did not match their recorded size or checksum. */
export class IntegrityError extends Error {
  override readonly name = 'IntegrityError' as const;
}

/** The runner ended without a successful outcome. */
export class RunnerFailedError extends Error {
  override readonly name = 'RunnerFailedError' as const;
}

/** A git operation (ls-remote, clone) failed: unreachable repo, unknown branch or commit. */
export class GitError extends Error {
  override readonly name = 'GitError' as const;
}

/** The session was deleted or cancelled while it ran. */
export class SessionCancelledError extends Error {
  override readonly name = 'SessionCancelledError' as const;
}

/** A passing fault (throttling, a dropped connection): safe to retry. */
export class TransientError extends Error {
  override readonly name = 'TransientError' as const;
}

/** Every domain error name, for tests that check ASL `ErrorEquals` lists against this module. */
export const DOMAIN_ERROR_NAMES = [
  'ValidationError',
  'NotFoundError',
  'ConflictError',
  'InvalidStateError',
  'ImageWaitTimeoutError',
  'IntegrityError',
  'RunnerFailedError',
  'GitError',
  'SessionCancelledError',
  'TransientError',
] as const;

export type DomainErrorName = (typeof DOMAIN_ERROR_NAMES)[number];
