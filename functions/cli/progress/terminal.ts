import { SYSTEM_ENV } from '../../server/environment.ts';
import { processIo, type CliIo } from '../io.ts';

/** Where live progress goes, and whether it can be redrawn in place. */
export interface Terminal {
  /** True on an interactive terminal that understands cursor movement (not `TERM=dumb`). */
  isTTY: boolean;
  columns: number;
  color: boolean;
  write(text: string): void;
}

/**
 * The terminal behind the CLI's output: the process's stdout when the CLI runs as a program
 * (a TTY only when stdout is one), otherwise (tests, output captured in-process) a plain
 * line writer, never a TTY.
 */
export function terminalFor(io: CliIo): Terminal {
  if (io === processIo) {
    const stdout = process.stdout;
    return {
      isTTY: Boolean(stdout.isTTY) && io.env[SYSTEM_ENV.TERM] !== 'dumb',
      columns: stdout.columns || 80,
      // https://no-color.org: any value turns colour off.
      color: io.env[SYSTEM_ENV.NO_COLOR] === undefined,
      write: (text) => void stdout.write(text),
    };
  }
  return { isTTY: false, columns: 80, color: false, write: (text) => io.out(text.replace(/\n$/, '')) };
}
