import type { StepPorts } from './step-ports.ts';
import { sessionKeys } from './session-keys.ts';

/** What the steps read of the runner's outcome document (the runner's module owns the full schema). */
export interface UploadedArtifact {
  key: string;
  size: number;
  md5: string;
  sha256: string;
  from?: 'customized' | 'source';
}

export interface RunnerOutcome {
  session: string;
  status: 'succeeded' | 'failed';
  reason?: string;
  failed_layer?: string;
  failed_image?: string;
  started: string;
  finished: string;
  images: {
    image_id: string;
    result_id: string;
    result_name: string;
    staged: boolean;
    customized: boolean;
    uploaded?: { rootfs: UploadedArtifact; kernel?: UploadedArtifact; initrd?: UploadedArtifact };
  }[];
  layers: { index: number; name: string; exit_code: number | null; duration_ms: number; log_key: string; state: string }[];
}

/** The runner's outcome for a session, or undefined when the runner never wrote one. */
export async function readRunnerOutcome(ports: Pick<StepPorts, 'artifacts'>, session: string): Promise<RunnerOutcome | undefined> {
  const key = sessionKeys.runnerOutcome(session);
  if (!(await ports.artifacts.head(key))) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of await ports.artifacts.get(key)) chunks.push(Buffer.from(chunk as Buffer));
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as RunnerOutcome;
}
