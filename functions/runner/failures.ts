/**
 * How the runner ends. The exit code is the coarse signal (all an ECS task reports); the
 * outcome document carries the detail. The lead's engine and the ECS task definition read
 * these codes:
 *
 * - 0 succeeded: every layer ran and every result was uploaded
 * - 1 a layer failed (or its repository could not be fetched at the pinned commit)
 * - 2 bad input: the run document is missing, unreadable or breaks the schema
 * - 3 staging or integrity failure: checksum or size mismatch, not enough disk, corrupt squashfs
 * - 4 environment: not root, a required tool missing, image arch not runnable here
 * - 5 packaging or upload failure
 * - 6 an image failed its test: a check in its customized root, or the boot of its packed result
 * - 143 terminated by SIGTERM (128 + 15, what a shell reports for a TERM-killed process), or
 *   stopped the same way when the run document's time budget ran out
 */
export const RUNNER_EXIT_CODES = {
  succeeded: 0,
  layer: 1,
  input: 2,
  staging: 3,
  environment: 4,
  packaging: 5,
  test: 6,
  terminated: 143,
} as const;

export type FailureKind = Exclude<keyof typeof RUNNER_EXIT_CODES, 'succeeded'>;

/** A failure the runner understands: its kind picks the exit code; layer and image go into the outcome. */
export class RunnerFailure extends Error {
  override readonly name = 'RunnerFailure' as const;
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly context: { layer?: string; image?: string } = {},
  ) {
    super(message);
  }

  get exitCode(): number {
    return RUNNER_EXIT_CODES[this.kind];
  }
}

/** One line for the outcome's `reason`: no stack, no multi-line tool output. */
export function oneLine(text: string, max = 500): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
