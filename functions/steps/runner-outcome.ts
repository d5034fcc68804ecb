import { runOutcomeSchema, type RunOutcome } from '../runner/run-document.ts';
import { sessionKeys } from '../core/workflow/session-keys.ts';
import type { StepPorts } from './step-ports.ts';

export type { RunOutcome, UploadedArtifact } from '../runner/run-document.ts';

/**
 * The runner's outcome for a session, or undefined when the runner never wrote one (killed, or
 * it never started). An outcome that does not parse counts as none: it cannot be trusted.
 */
export async function readRunnerOutcome(ports: Pick<StepPorts, 'artifacts'>, session: string): Promise<RunOutcome | undefined> {
  const key = sessionKeys.runnerOutcome(session);
  if (!(await ports.artifacts.head(key))) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of await ports.artifacts.get(key)) chunks.push(Buffer.from(chunk as Buffer));
  try {
    const parsed = runOutcomeSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
