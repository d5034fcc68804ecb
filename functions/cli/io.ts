import { readFile } from 'node:fs/promises';

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

/** A `--file` given to a command: its JSON, or a one-line CliError saying why not. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
}
