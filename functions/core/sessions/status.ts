import type { SessionRecord, SessionStatus, SessionSucceeded } from '../model/session.ts';

const STATUS_ORDER: SessionStatus[] = ['pending', 'running', 'complete'];
const SUCCEEDED_ORDER: SessionSucceeded[] = ['none', 'unknown', 'false', 'true'];

export interface SessionStatusChange {
  status?: SessionStatus;
  succeeded?: SessionSucceeded;
  completion_time?: string;
  /** undefined leaves the message; an empty string clears it. */
  message?: string;
}

/**
 * Applies a status change the way CFS does: `status` and `succeeded` only move forward
 * (pending < running < complete; none < unknown < false < true) and empty values never
 * overwrite existing ones, so a late or repeated step can never move a session backwards.
 */
export function advanceSession(record: SessionRecord, change: SessionStatusChange): SessionRecord {
  const current = record.status.session;
  const session = { ...current };
  if (change.status && STATUS_ORDER.indexOf(change.status) > STATUS_ORDER.indexOf(current.status)) session.status = change.status;
  if (change.succeeded && SUCCEEDED_ORDER.indexOf(change.succeeded) > SUCCEEDED_ORDER.indexOf(current.succeeded)) {
    session.succeeded = change.succeeded;
  }
  if (change.completion_time && !current.completion_time) session.completion_time = change.completion_time;
  const status = { ...record.status, session };
  if (change.message !== undefined) {
    if (change.message === '') delete status.message;
    else status.message = change.message;
  }
  return { ...record, status };
}
