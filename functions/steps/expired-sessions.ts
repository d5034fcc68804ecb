import { removeDeletedRunObjects, type SessionObjectStore } from '../core/sessions/retention.ts';
import type { SessionStore } from '../ports/session-store.ts';
import { recordKey } from '../adapters/dynamodb/table-schema.ts';

/** DynamoDB's own identity on the stream records of items its TTL removed. */
export const TTL_PRINCIPAL = 'dynamodb.amazonaws.com';

/** A stream attribute value, the two shapes read here. */
interface StreamValue {
  S?: string;
  M?: Record<string, StreamValue>;
}

/** The parts of a DynamoDB stream record this step reads (view type OLD_IMAGE). */
export interface TableStreamRecord {
  eventName?: string;
  userIdentity?: { type?: string; principalId?: string };
  dynamodb?: { OldImage?: Record<string, StreamValue> };
}

/** A session whose record the table's TTL removed, with the execution that ran it. */
export interface ExpiredSession {
  name: string;
  job?: string;
}

const SESSION_PK = recordKey('SESSION', '').pk;
const SESSION_SK = recordKey('SESSION', '').sk;

/**
 * The sessions a stream batch says the TTL removed: REMOVE records by DynamoDB itself (an API
 * delete removes its objects on its own path, once its runner stopped) of session items.
 */
export function expiredSessionsIn(records: TableStreamRecord[]): ExpiredSession[] {
  const expired: ExpiredSession[] = [];
  for (const record of records) {
    if (record.eventName !== 'REMOVE' || record.userIdentity?.principalId !== TTL_PRINCIPAL) continue;
    const image = record.dynamodb?.OldImage;
    const pk = image?.pk?.S;
    if (!pk?.startsWith(SESSION_PK) || image?.sk?.S !== SESSION_SK) continue;
    const job = image.doc?.M?.status?.M?.session?.M?.job?.S;
    expired.push({ name: pk.slice(SESSION_PK.length), ...(job ? { job } : {}) });
  }
  return expired;
}

/**
 * Removes the stored objects (documents, logs, the runner's prefix) of sessions the TTL expired:
 * the AWS side of what the embedded retention sweep does when it removes a record. A newer
 * session of the same name keeps its own (only the expired run's go). Returns the names removed.
 */
export async function removeExpiredSessionObjects(
  ports: { sessions: Pick<SessionStore, 'get'>; artifacts: SessionObjectStore },
  expired: ExpiredSession[],
): Promise<string[]> {
  const removed: string[] = [];
  for (const session of expired) {
    if (await removeDeletedRunObjects(ports, session.name, session.job)) removed.push(session.name);
  }
  return removed;
}
