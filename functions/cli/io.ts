/**
 * Where the CLI writes and what it reads from its environment: the real process by default,
 * a capturing fake in tests (so commands run in-process through parseAsync).
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
}

/** The running process's stdout, stderr and environment. */
export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => void process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  env: process.env,
};

/** A user-facing failure: printed as one `Error: ...` line, exit code 1. */
export class CliError extends Error {
  override readonly name = 'CliError' as const;
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
