import type { SessionRecord } from '../model/session.ts';
import type { SessionCreateRequest, V2SessionCreateRequest, V3SessionCreateInput, V2SessionCreateInput } from './session-schemas.ts';
import { ValidationError } from '../errors.ts';
import { redactCloneUrl } from '../workflow/redact.ts';
import { sessionLogsPath } from './logs.ts';

/**
 * CFS v2 <-> v3 session shapes. v3 (snake_case) is what is stored; v2 (camelCase top level,
 * no `debug_on_failure`, no `ims_job`) is a view made at the API edge, as CFS's own
 * `dbutils/conversions.py` does.
 */

/** v3 create-request field -> its v2 spelling (fields not listed are spelled the same). */
export const V3_TO_V2_SESSION_FIELDS: Readonly<Record<string, string>> = {
  configuration_name: 'configurationName',
  configuration_limit: 'configurationLimit',
  ansible_limit: 'ansibleLimit',
  ansible_config: 'ansibleConfig',
  ansible_verbosity: 'ansibleVerbosity',
  ansible_passthrough: 'ansiblePassthrough',
};

/** A parsed v2 create request as the v3 request the use case takes (`debug_on_failure` false; `validation` as given). */
export function v2RequestToV3(request: V2SessionCreateRequest): SessionCreateRequest {
  return {
    name: request.name,
    configuration_name: request.configurationName,
    configuration_limit: request.configurationLimit,
    ansible_limit: request.ansibleLimit,
    ansible_config: request.ansibleConfig,
    ansible_verbosity: request.ansibleVerbosity,
    ansible_passthrough: request.ansiblePassthrough,
    target: request.target,
    tags: request.tags,
    debug_on_failure: false,
    ...(request.validation ? { validation: request.validation } : {}),
    ...(request.layer_cache !== undefined ? { layer_cache: request.layer_cache } : {}),
  };
}

/**
 * A v3 request body as the v2 body `cray` would send (only the fields given). Refuses
 * `debug_on_failure: true`, which v2 cannot carry.
 */
export function v3InputToV2Input(input: V3SessionCreateInput): V2SessionCreateInput {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (key === 'debug_on_failure') {
      if (value) throw new ValidationError('debug_on_failure: is a v3 field; use the v3 API', 'debug_on_failure');
      continue;
    }
    out[V3_TO_V2_SESSION_FIELDS[key] ?? key] = value;
  }
  return out as V2SessionCreateInput;
}

/** Renames a ValidationError's leading field from its v3 to its v2 spelling (for v2 callers). */
export function renameErrorFieldToV2(error: ValidationError): ValidationError {
  if (!error.field) return error;
  const head = error.field.split(/[.[]/, 1)[0]!;
  const v2 = V3_TO_V2_SESSION_FIELDS[head];
  if (!v2) return error;
  const field = v2 + error.field.slice(head.length);
  const message = error.message.startsWith(`${error.field}:`) ? field + error.message.slice(error.field.length) : error.message;
  return new ValidationError(message, field);
}

/** The stored status as the API shows it: pinned clone URLs without their credentials. */
function statusView(status: SessionRecord['status']): SessionRecord['status'] {
  return { ...status, layers: status.layers.map((l) => ({ ...l, clone_url: redactCloneUrl(l.clone_url) })) };
}

/** The v3 response body (V3SessionData). */
export type V3SessionView = Omit<SessionRecord, 'validation' | 'layer_cache' | 'status'> & {
  logs: string;
  status: SessionRecord['status'] & { validation?: SessionRecord['validation']; layer_cache?: false };
};

/** This product's create-request fields, shown under `status` (which the spec leaves open): `validation` when asked for, `layer_cache: false` when the session turned the cache off. */
function requestExtensions(record: SessionRecord): { validation?: SessionRecord['validation']; layer_cache?: false } {
  return { ...(record.validation ? { validation: record.validation } : {}), ...(record.layer_cache === false ? { layer_cache: false as const } : {}) };
}

/**
 * The v3 response body (V3SessionData): the stored record, top level limited to the spec's
 * fields (so clients generated from it keep working), `validation` under `status` (which the spec
 * leaves open) when the session asked for it; `logs` is the path of the session's logs (`GET` it
 * with a cursor to follow them).
 */
export function sessionToV3(record: SessionRecord): V3SessionView {
  return {
    name: record.name,
    configuration: record.configuration,
    ansible: record.ansible,
    target: record.target,
    tags: record.tags,
    debug_on_failure: record.debug_on_failure,
    status: { ...statusView(record.status), ...requestExtensions(record) },
    logs: sessionLogsPath(record.name),
  };
}

/** The v2 response body (V2Session). */
export interface V2SessionView {
  name: string;
  configuration: SessionRecord['configuration'];
  ansible: SessionRecord['ansible'];
  target: SessionRecord['target'];
  tags: Record<string, string>;
  status: Omit<SessionRecord['status'], 'session'> & {
    /** As in v3: this product's field, under `status` (which v2 leaves open), spelled the same in both views. */
    validation?: SessionRecord['validation'];
    layer_cache?: false;
    session: {
      job?: string;
      startTime: string;
      /** Null until the session completes, as the v2 spec says. */
      completionTime: string | null;
      status: SessionRecord['status']['session']['status'];
      succeeded: SessionRecord['status']['session']['succeeded'];
    };
  };
}

/** The stored record as CFS v2 shows it; this product's `status` extensions ride along (v2 leaves `status` open). */
export function sessionToV2(record: SessionRecord): V2SessionView {
  const { session, ...rest } = statusView(record.status);
  return {
    name: record.name,
    configuration: record.configuration,
    ansible: record.ansible,
    target: record.target,
    tags: record.tags,
    status: {
      ...rest,
      ...requestExtensions(record),
      session: {
        ...(session.job ? { job: session.job } : {}),
        startTime: session.start_time,
        completionTime: session.completion_time ?? null,
        status: session.status,
        succeeded: session.succeeded,
      },
    },
  };
}
