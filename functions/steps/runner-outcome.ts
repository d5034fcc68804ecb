import { runOutcomeSchema, type RunOutcome } from '../core/workflow/run-document.ts';
import { findRunnerLocations } from '../core/workflow/run-document-store.ts';
import type { StepPorts } from './step-ports.ts';

export type { RunOutcome, UploadedArtifact } from '../core/workflow/run-document.ts';

/**
 * The runner's outcome for a session (at the key its control-plane run document names), or
 * undefined when the runner never wrote one (killed, or it never started). An outcome that does
 * not parse, or names another session, counts as none: it cannot be trusted.
 */
export async function readRunnerOutcome(ports: Pick<StepPorts, 'artifacts'>, session: string): Promise<RunOutcome | undefined> {
  const key = (await findRunnerLocations(ports.artifacts, session)).outcome;
  if (!(await ports.artifacts.head(key))) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of await ports.artifacts.get(key)) chunks.push(Buffer.from(chunk as Buffer));
  try {
    const parsed = runOutcomeSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    return parsed.success && parsed.data.session === session ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
