import { processIo, type CliIo } from '../io.ts';

/** Where a transfer reports the bytes it moved (uploads and downloads). */
export interface TransferProgress {
  /** A new transfer of `total` bytes (`label` names it: `rootfs`, `rootfs.squashfs`). */
  start(label: string, total: number): void;
  /** `bytes` more arrived (or were found on the server already, when resuming). */
  advance(bytes: number): void;
  /** The transfer ended (done or not): leaves the last state on screen. */
  finish(): void;
}

/** Nothing shown (the default of library callers and tests). */
export const silentProgress: TransferProgress = { start: () => undefined, advance: () => undefined, finish: () => undefined };

/** Off a terminal, transfers below this size print no progress lines. */
const PLAIN_MIN_BYTES = 64 * 1024 * 1024;

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1.5 GiB`: bytes in the largest unit that keeps the number at least 1. */
export function humanBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit]}`;
}

/** One line of the bar: `label [#####     ]  50%  1.0 GiB / 2.0 GiB  85.3 MiB/s`, cut to `columns`. */
export function transferLine(label: string, done: number, total: number, seconds: number, columns: number): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const width = 24;
  const filled = Math.round(fraction * width);
  const rate = seconds > 0 ? `  ${humanBytes(done / seconds)}/s` : '';
  const line = `${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${humanBytes(done)} / ${humanBytes(total)}${rate}`;
  return line.length > columns - 1 ? line.slice(0, Math.max(0, columns - 1)) : line;
}

/**
 * A progress bar on stderr: redrawn in place (at most ten times a second) when stderr is a
 * terminal, else one plain line per tenth of a transfer of 64 MiB or more, so logs stay short.
 */
export function transferBar(io: CliIo, clock: () => number = Date.now): TransferProgress {
  const stderr = io === processIo ? process.stderr : undefined;
  const tty = Boolean(stderr?.isTTY) && io.env.TERM !== 'dumb';
  let label = '';
  let total = 0;
  let done = 0;
  let started = 0;
  let drawn = 0;
  let tenth = -1;
  const seconds = () => (clock() - started) / 1000;
  const draw = (force: boolean) => {
    if (tty) {
      if (!force && clock() - drawn < 100) return;
      drawn = clock();
      stderr!.write(`\r\x1b[2K${transferLine(label, done, total, seconds(), stderr!.columns || 80)}`);
      return;
    }
    // Off a terminal, small transfers say nothing: their lines would only be noise in a log.
    if (total < PLAIN_MIN_BYTES) return;
    const now = total > 0 ? Math.floor((done / total) * 10) : 10;
    if (now === tenth && !force) return;
    tenth = now;
    io.err(transferLine(label, done, total, seconds(), 120));
  };
  return {
    start(name, bytes) {
      label = name;
      total = bytes;
      done = 0;
      tenth = -1;
      started = clock();
      draw(true);
    },
    advance(bytes) {
      done += bytes;
      draw(false);
    },
    finish() {
      if (tty) {
        draw(true);
        stderr!.write('\n');
      } else if (tenth !== 10) draw(true);
    },
  };
}
