import { cachedLabel } from '../../core/workflow/layer-cache-status.ts';
import { rowTime, sessionRows, type RowState, type SessionView, type StepRow } from './session-steps.ts';
import type { Terminal } from './terminal.ts';

/** Shows a session's steps as they change: redrawn in place on a terminal, one line per change otherwise. */
export interface ProgressRenderer {
  /** A fresh view of the session (each poll). */
  update(session: SessionView, now: Date): void;
  /** Animation only (spinners); the data did not change. */
  tick(now: Date): void;
  /** The last view: leaves the final list on screen. */
  finish(now: Date): void;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const MARKS: Record<Exclude<RowState, 'running'>, string> = { succeeded: '✔', failed: '✖', skipped: '–', pending: '·', cached: '↺' };
const COLORS: Partial<Record<RowState, string>> = { succeeded: '32', failed: '31', running: '36', skipped: '2', pending: '2', cached: '34' };

/** One plain-text line of a row: `<label>: <state> (<time>)`. */
export function plainRowLine(row: StepRow, now: Date): string {
  if (row.state === 'cached') return `${row.label}: ${cachedLabel(row.cached_from, now)}`;
  const time = row.state === 'running' ? '' : rowTime(row, now);
  return `${row.label}: ${row.state}${time ? ` (${time})` : ''}`;
}

/** What a row shows after its label on a terminal: its time, or for a cached layer where it came from. */
function rowDetail(row: StepRow, now: Date): string {
  if (row.state !== 'cached') return rowTime(row, now);
  return row.cached_from ? cachedLabel(row.cached_from, now).replace(/^cached /, '') : 'cached';
}

/**
 * The lines of one terminal frame: a header, then each row with its mark (a spinner frame
 * while running) and its time; every line cut to the terminal's width, so none wraps and the
 * redraw always moves up exactly as many lines as it drew.
 */
export function frameLines(session: SessionView, now: Date, frame: number, options: { columns: number; color: boolean }): string[] {
  const rows = sessionRows(session);
  const width = Math.max(...rows.map((r) => r.label.length));
  const fit = (text: string) => (text.length > options.columns - 1 ? `${text.slice(0, Math.max(0, options.columns - 2))}…` : text);
  const paint = (text: string, state: RowState) => (options.color && COLORS[state] ? `\x1b[${COLORS[state]}m${text}\x1b[0m` : text);
  const status = session.status?.session?.status ?? 'unknown';
  const message = session.status?.message ? `: ${session.status.message}` : '';
  const lines = [fit(`session ${session.name} (${status})${message}`)];
  for (const row of rows) {
    const mark = row.state === 'running' ? SPINNER[frame % SPINNER.length]! : MARKS[row.state];
    const text = fit(`  ${mark} ${row.label.padEnd(width)}  ${rowDetail(row, now)}`.trimEnd());
    // Only the mark is coloured, after the cut, so colour codes never count against the width.
    lines.push(`  ${paint(mark, row.state)}${text.slice(2 + mark.length)}`);
  }
  return lines;
}

/** Redraws the step list in place on a terminal (cursor hidden while it runs). */
export class TerminalRenderer implements ProgressRenderer {
  private session?: SessionView;
  private drawn = 0;
  private frame = 0;

  constructor(private readonly terminal: Terminal) {}

  update(session: SessionView, now: Date): void {
    this.session = session;
    this.draw(now);
  }

  tick(now: Date): void {
    this.frame++;
    this.draw(now);
  }

  finish(now: Date): void {
    this.draw(now);
    this.terminal.write('\x1b[?25h');
  }

  private draw(now: Date): void {
    if (!this.session) return;
    const lines = frameLines(this.session, now, this.frame, { columns: this.terminal.columns, color: this.terminal.color });
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : '\x1b[?25l';
    // Lines of an earlier, longer frame are cleared too (the list only grows, but be exact).
    const stale = Math.max(0, this.drawn - lines.length);
    this.terminal.write(up + lines.map((l) => `\r\x1b[2K${l}\n`).join('') + '\r\x1b[2K\n'.repeat(stale) + (stale ? `\x1b[${stale}A` : ''));
    this.drawn = lines.length;
  }
}

/** One plain line per step change (no control characters), for pipes, files and CI logs. */
export class PlainRenderer implements ProgressRenderer {
  // A row's state, and for a cached layer the session it came from (known only once the run ends).
  private readonly seen = new Map<string, string>();
  private message?: string;

  constructor(private readonly writeLine: (line: string) => void) {}

  update(session: SessionView, now: Date): void {
    const message = session.status?.message;
    if (message && message !== this.message) this.writeLine(`session ${session.name}: ${message}`);
    this.message = message;
    for (const row of sessionRows(session)) {
      const before = this.seen.get(row.key) ?? 'pending';
      const state = row.cached_from ? `${row.state}:${row.cached_from.session}` : row.state;
      this.seen.set(row.key, state);
      if (state !== before) this.writeLine(plainRowLine(row, now));
    }
  }

  tick(): void {}

  finish(): void {}
}
