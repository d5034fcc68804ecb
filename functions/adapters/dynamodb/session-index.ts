import { createHash } from 'node:crypto';
import type { SessionRecord, SessionStatus } from '../../core/model/session.ts';
import { toStoredDoc } from './stored-keys.ts';
import { listKey, recordKey, TABLE_SCHEMA } from './table-schema.ts';

/**
 * The index attributes of session items (table-schema.ts documents the layout and which
 * filters each index serves). Written by the session store on every put, and by the local
 * table migration when it re-indexes items stored before these indexes existed.
 */

/** The sort key prefix of a session's tag items (they share the session's partition). */
export const TAG_SORT_PREFIX = 'TAG#';

/** A session's start time as a fixed-width RFC 3339 string (whole seconds, `Z`), so string order is time order. */
export function startedKey(startTime: string): string {
  const parsed = Date.parse(startTime);
  return Number.isNaN(parsed) ? startTime : new Date(parsed).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function statusPartition(status: SessionStatus): string {
  return `SESSION_STATUS#${status}`;
}

/** A tag as a fixed-length key (tag keys and values may be long; index keys may not). */
export function tagHash(key: string, value: string): string {
  return createHash('sha256').update(key).update('\u0000').update(value).digest('hex');
}

export function tagPartition(key: string, value: string): string {
  return `SESSION_TAG#${tagHash(key, value)}`;
}

/**
 * GSI2/GSI3 attributes of a session item, `started` (what age filters compare) and, once the
 * session has completed, the table's TTL attribute (DynamoDB removes it past its session_ttl in AWS).
 */
export function sessionIndexAttributes(session: Pick<SessionRecord, 'name' | 'status' | 'expires_at'>) {
  const started = startedKey(session.status.session.start_time);
  return {
    gsi2pk: statusPartition(session.status.session.status),
    gsi2sk: session.name,
    gsi3sk: `${started}#${session.name}`,
    started,
    ...(session.expires_at !== undefined ? { [TABLE_SCHEMA.ttlAttribute]: session.expires_at } : {}),
  };
}

/**
 * The companion item that lists a session under one of its tags. Its filter fields never change;
 * it takes its session's TTL attribute when that is set, so DynamoDB removes both together.
 */
export function sessionTagItem(session: Pick<SessionRecord, 'name' | 'tags' | 'status' | 'expires_at'>, key: string, value: string) {
  return {
    pk: recordKey('SESSION', session.name).pk,
    sk: `${TAG_SORT_PREFIX}${tagHash(key, value)}`,
    gsi1pk: tagPartition(key, value),
    gsi1sk: session.name,
    started: startedKey(session.status.session.start_time),
    doc: toStoredDoc({ name: session.name, tags: session.tags }),
    ...(session.expires_at !== undefined ? { [TABLE_SCHEMA.ttlAttribute]: session.expires_at } : {}),
  };
}

/** Every tag item of a session. */
export function sessionTagItems(session: Pick<SessionRecord, 'name' | 'tags' | 'status' | 'expires_at'>) {
  return Object.entries(session.tags ?? {}).map(([key, value]) => sessionTagItem(session, key, value));
}

/** Every item of a session as the store writes it (the session item at `version`, then its tag items): for bulk loads. */
export function sessionItems(session: SessionRecord, version = 1): Array<Record<string, unknown>> {
  return [
    { ...recordKey('SESSION', session.name), ...listKey('SESSION', session.name), ...sessionIndexAttributes(session), version, doc: toStoredDoc(session) },
    ...sessionTagItems(session),
  ];
}
