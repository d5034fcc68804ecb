import { createHash } from 'node:crypto';
import { IntegrityError } from '../core/errors.ts';
import type { StepPorts } from './step-ports.ts';

/**
 * Reads a stored object back and checks it against the size and sha256 the runner recorded:
 * nothing is registered on the runner's word alone.
 */
export async function verifyStoredArtifact(
  ports: Pick<StepPorts, 'artifacts'>,
  expected: { key: string; size: number; sha256: string },
): Promise<void> {
  const head = await ports.artifacts.head(expected.key);
  if (!head) throw new IntegrityError(`uploaded artifact ${expected.key} is missing`);
  if (head.size !== expected.size) {
    throw new IntegrityError(`uploaded artifact ${expected.key} is ${head.size} bytes, the runner recorded ${expected.size}`);
  }
  const hash = createHash('sha256');
  for await (const chunk of await ports.artifacts.get(expected.key)) hash.update(chunk as Buffer);
  const actual = hash.digest('hex');
  if (actual !== expected.sha256) {
    throw new IntegrityError(`uploaded artifact ${expected.key} has sha256 ${actual}, the runner recorded ${expected.sha256}`);
  }
}
