import { NotFoundError } from '../core/errors.ts';
import type { SessionRecord } from '../core/model/session.ts';
import { applyLayerProgress } from '../core/workflow/layer-steps.ts';
import { applyTestProgress } from '../core/workflow/test-steps.ts';
import { runProgressSchema, type RunProgress } from '../core/workflow/run-document.ts';
import { findRunnerLocations } from '../core/workflow/run-document-store.ts';
import type { StepPorts } from './step-ports.ts';

/** The runner's progress document for a session, or undefined when there is none (yet) or it does not parse. */
async function readRunnerProgress(ports: Pick<StepPorts, 'artifacts'>, session: string): Promise<RunProgress | undefined> {
  const key = (await findRunnerLocations(ports.artifacts, session)).progress;
  if (!(await ports.artifacts.head(key))) return undefined;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of await ports.artifacts.get(key)) chunks.push(Buffer.from(chunk as Buffer));
    const parsed = runProgressSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    // Removed between the head and the read, or caught mid-write by a store without atomic puts.
    return undefined;
  }
}

/** The runner's report written into a record: each layer (`ansible` entries) and each image's test (`test` entries). */
function applyRunnerProgress(record: SessionRecord, progress: RunProgress): SessionRecord {
  return applyTestProgress(applyLayerProgress(record, progress.layers), progress.tests ?? []);
}

/**
 * A function writing the runner's last report of each layer and each image's test into a record
 * (leaving it as it is when there is no report): for the steps that end a session, and for
 * describing a running one, in AWS where nothing copies the report while the runner runs.
 */
export async function withRunnerLayers(ports: Pick<StepPorts, 'artifacts'>, session: string): Promise<(record: SessionRecord) => SessionRecord> {
  const progress = await readRunnerProgress(ports, session);
  return progress ? (record) => applyRunnerProgress(record, progress) : (record) => record;
}

/**
 * Copies the runner's progress into the session's `status.steps` (one `ansible` entry per layer
 * that has started, the `test` entries of each image whose test has started). Writes only when
 * something changed; a session deleted meanwhile needs nothing. The embedded engine calls it
 * while its runner runs and once after.
 */
export async function syncLayerProgress(ports: Pick<StepPorts, 'sessions' | 'artifacts'>, session: string): Promise<void> {
  const progress = await readRunnerProgress(ports, session);
  if (!progress) return;
  const current = await ports.sessions.get(session);
  if (!current || applyRunnerProgress(current, progress) === current) return;
  try {
    await ports.sessions.update(session, (s) => applyRunnerProgress(s, progress));
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
  }
}
