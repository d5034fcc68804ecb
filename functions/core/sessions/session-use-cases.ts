import { NotFoundError } from '../errors.ts';
import type { SessionRecord } from '../model/session.ts';
import { ownStringMap } from '../model/string-map.ts';
import type { AppPorts } from '../../ports/index.ts';
import { pinLayers } from './configuration-limit.ts';
import { pinSources } from '../sources/pin-sources.ts';
import { isHeld } from './debug-hold.ts';
import { removeSessionObjects } from './retention.ts';
import { rfc3339 } from './rfc3339.ts';
import { validateSessionRequest } from './session-rules.ts';
import { v3SessionCreateSchema, type V3SessionCreateInput } from './session-schemas.ts';
import { fieldError, parseOrThrow } from './validation.ts';

/** What the session use cases touch. */
export type SessionPorts = Pick<AppPorts, 'sessions' | 'configurations' | 'workflow' | 'clock'> & Partial<Pick<AppPorts, 'sources'>>;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Creates an image customization session: validates the request, pins the configuration's
 * layers (after `configuration_limit`) under `status.layers` so later configuration edits
 * never change this session, stores it `pending` (a duplicate name is a ConflictError, also
 * when two creates race) with the execution id it will have in `status.session.job`, then
 * hands it to the workflow. If the workflow cannot be started the record is removed again, so
 * the caller can retry with the same name.
 */
export async function createSession(ports: SessionPorts, input: V3SessionCreateInput | Record<string, unknown>): Promise<SessionRecord> {
  const request = validateSessionRequest(parseOrThrow(v3SessionCreateSchema, input));
  const configuration = await ports.configurations.get(request.configuration_name);
  if (!configuration) throw fieldError('configuration_name', `configuration '${request.configuration_name}' does not exist`);
  if (configuration.additional_inventory) {
    // The target groups are the whole inventory of an image session (see DESIGN.md).
    throw fieldError(
      'configuration_name',
      `configuration '${configuration.name}' has additional_inventory, which image sessions here do not use; the target groups are the whole inventory`,
    );
  }
  if (configuration.layers.length === 0) throw fieldError('configuration_name', `configuration '${configuration.name}' has no layers to run`);
  const layers = await pinSources(ports, pinLayers(configuration, request.configuration_limit));

  const record: SessionRecord = {
    name: request.name,
    configuration: { name: request.configuration_name, limit: request.configuration_limit },
    ansible: {
      config: request.ansible_config,
      limit: request.ansible_limit,
      verbosity: request.ansible_verbosity,
      passthrough: request.ansible_passthrough,
    },
    target: request.target,
    // Rebuilt from the client's object: the schema's record leaves a `__proto__` key out.
    tags: isObject(input.tags) ? ownStringMap(input.tags, 'tags') : request.tags,
    debug_on_failure: request.debug_on_failure,
    // Absent when not asked for: a session without it is neither checked nor booted.
    ...(request.validation ? { validation: request.validation } : {}),
    // Kept only when turned off: absent, the session may reuse cached layers.
    ...(request.layer_cache === false ? { layer_cache: false as const } : {}),
    status: {
      session: { status: 'pending', succeeded: 'none', start_time: rfc3339(ports.clock.now()) },
      artifacts: [],
      layers,
    },
  };
  // Stored with its planned job, the session is complete in one write unless the runtime picks another id.
  const planned = ports.workflow.plannedJob?.(record);
  if (planned) record.status.session.job = planned;
  await ports.sessions.create(record);

  let job: string;
  try {
    job = await ports.workflow.start(record.name, planned);
  } catch (error) {
    await ports.sessions.delete(record.name).catch(() => false);
    throw error;
  }
  if (job === planned) return record;
  // Only `job` is written: the workflow may already have moved the session on.
  return ports.sessions.update(record.name, (current) => ({
    ...current,
    status: { ...current.status, session: { ...current.status.session, job } },
  }));
}

/** One session; NotFoundError when there is none of that name. */
export async function getSession(ports: Pick<AppPorts, 'sessions'>, name: string): Promise<SessionRecord> {
  const record = await ports.sessions.get(name);
  if (!record) throw new NotFoundError('session', name);
  return record;
}

/**
 * Deletes a session with everything it keeps in the store (run documents, outcome, logs, its
 * runner's prefix). A pending or running one with a workflow execution is stopped first: `stop`
 * returns at once and the workflow's runtime finishes the clean-up (runner, staged bytes,
 * workspace, then the session's objects, once its runner can no longer write them) in the
 * background, so the caller is answered at once. A failed session holding its workspace for
 * debugging is released first. NotFoundError when missing.
 */
export async function deleteSession(ports: Pick<AppPorts, 'sessions' | 'workflow'> & Partial<Pick<AppPorts, 'artifacts'>>, name: string): Promise<void> {
  const record = await getSession(ports, name);
  const { status, job } = record.status.session;
  // A held session is `running` but its workflow has ended: its hold is released, nothing stopped.
  const stopping = (status === 'pending' || status === 'running') && job && !isHeld(record);
  if (stopping) await ports.workflow.stop(name, job);
  else if (isHeld(record)) await ports.workflow.releaseHold?.(name);
  if (!(await ports.sessions.delete(name))) throw new NotFoundError('session', name);
  // A session that ended takes its documents, logs and runner prefix with it now; a stopping one's
  // clean-up (cleanup's deleted-session path) removes them after its runner stopped, as a later
  // write would bring them back.
  if (!stopping && ports.artifacts) await removeSessionObjects(ports.artifacts, name);
}
