import { DEFAULT_IMAGE_BUCKET } from '../images/manifest.ts';
import type { AppPorts } from '../../ports/index.ts';

/** How long each part may take to answer before it counts as unavailable (API Gateway gives up at 29 s). */
export const HEALTH_CHECK_TIMEOUT_MS = 5_000;

/** A key nothing else uses (image ids are UUIDs; an image's objects are below its id): the artifact store's health probe writes and removes it. */
export const HEALTH_PROBE_KEY = `${DEFAULT_IMAGE_BUCKET}/healthz-probe`;

/** `ok`, `not_available` (it failed or did not answer in time), or `not_checked` (the runtime gives nothing to ask). */
export type PartStatus = 'ok' | 'not_available' | 'not_checked';

/** What the health routes report: each part, and whether all the checked ones answered. */
export interface ServiceHealth {
  /** The table (sessions, configurations, images, options) and the artifact store (image bytes, logs). */
  stores: PartStatus;
  /** The workflow engine: Step Functions in AWS, the embedded engine on one machine. */
  engine: PartStatus;
  healthy: boolean;
}

export interface HealthOptions {
  timeoutMs?: number;
  /** Where the reason of a failed check goes (the answer itself says only which part failed). */
  log?: (line: string) => void;
  /** Leave the workflow engine out (IMS's readiness: image records and bytes need no engine). */
  storesOnly?: boolean;
}

/** Runs one check within the time limit: `ok`, or `not_available` with the reason logged. */
async function probe(part: string, check: () => Promise<unknown>, options: HealthOptions): Promise<PartStatus> {
  const timeoutMs = options.timeoutMs ?? HEALTH_CHECK_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([check(), timedOut]);
    return 'ok';
  } catch (error) {
    (options.log ?? console.error)(`health: ${part} is not available: ${(error as Error)?.message ?? String(error)}`);
    return 'not_available';
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Checks the parts a session needs, each with one cheap call that the part itself must answer:
 * the table (a one-item page of sessions, always read from the table, never from a cache), the
 * artifact store (an empty object written and removed: a lookup alone cannot tell a missing
 * object from a missing store on a filesystem) and the workflow engine (its own health call,
 * where the runtime gives one). The three are checked at once.
 */
export async function checkServiceHealth(ports: Pick<AppPorts, 'sessions' | 'artifacts' | 'workflow'>, options: HealthOptions = {}): Promise<ServiceHealth> {
  const engineCheck = options.storesOnly ? undefined : ports.workflow.checkHealth?.bind(ports.workflow);
  const [table, artifacts, engine] = await Promise.all([
    probe('the session table', () => ports.sessions.query({ filter: {}, limit: 1 }), options),
    probe('the artifact store', async () => {
      await ports.artifacts.put(HEALTH_PROBE_KEY, '');
      await ports.artifacts.delete(HEALTH_PROBE_KEY);
    }, options),
    engineCheck ? probe('the workflow engine', engineCheck, options) : Promise.resolve<PartStatus>('not_checked'),
  ]);
  const stores: PartStatus = table === 'ok' && artifacts === 'ok' ? 'ok' : 'not_available';
  return { stores, engine, healthy: stores === 'ok' && engine !== 'not_available' };
}
