import { redactUrlsInText } from './redact.ts';

/** Lines of git's own message kept in an error, and characters per line. */
const MAX_LINES = 3;
const MAX_LINE_LENGTH = 200;

/** The lines where git (or the server, `remote:`) says what went wrong. */
const CAUSE = /^(fatal|error|remote):\s*/i;

/**
 * What git said when it failed, for an error sentence: its `fatal:`, `error:` and `remote:`
 * lines, which name the cause (git's advice after them, "Please make sure you have the correct
 * access rights / and the repository exists.", does not), without their prefix, repeated ones
 * once, at most three, each cut at 200 characters, joined by '; ', with the `user:password@` or
 * token of every URL removed. When git printed no such line, its last line; '' when it printed
 * nothing.
 */
export function gitMessage(stderr: string): string {
  const lines = stderr
    .split(/\r?\n|\r/)
    .map((line) => line.trim())
    .filter(Boolean);
  const causes = [...new Set(lines.filter((line) => CAUSE.test(line)).map((line) => line.replace(CAUSE, '')).filter(Boolean))];
  const kept = causes.length > 0 ? causes.slice(0, MAX_LINES) : lines.slice(-1);
  return kept
    .map((line) => redactUrlsInText(line))
    .map((line) => (line.length > MAX_LINE_LENGTH ? `${line.slice(0, MAX_LINE_LENGTH - 1)}…` : line))
    .join('; ');
}
