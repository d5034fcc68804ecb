/**
 * Image name patterns of automations (`source.name_pattern`): shell globs, as operators know
 * them from `ls compute-base-*`. `*` is any run of characters (also none), `?` one character,
 * `[abc]`, `[a-z]` and `[!a-z]` (or `[^a-z]`) one character of (or not of) a set; a backslash
 * takes the next character literally. The whole name must match.
 */

/** Why `pattern` is not a usable glob, or undefined when it is. */
export function globProblem(pattern: string): string | undefined {
  try {
    compileGlob(pattern);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const REGEXP_SPECIAL = /[\\^$.*+?()[\]{}|/-]/g;

function escapeChar(ch: string): string {
  return ch.replace(REGEXP_SPECIAL, '\\$&');
}

/** Reads a `[...]` set starting at `start` (the `[`); returns its RegExp text and the index after `]`. */
function readSet(pattern: string, start: number): { source: string; next: number } {
  let i = start + 1;
  let negate = false;
  if (pattern[i] === '!' || pattern[i] === '^') {
    negate = true;
    i++;
  }
  const items: string[] = [];
  // A `]` right after the opening (or after `!`) is a member, as in the shell.
  let first = true;
  while (i < pattern.length && (pattern[i] !== ']' || first)) {
    first = false;
    let ch = pattern[i]!;
    if (ch === '\\') {
      if (i + 1 >= pattern.length) throw new Error(`'${pattern}' ends with a lone backslash`);
      ch = pattern[++i]!;
    }
    if (pattern[i + 1] === '-' && i + 2 < pattern.length && pattern[i + 2] !== ']') {
      let high = pattern[i + 2]!;
      let skip = 3;
      if (high === '\\') {
        if (i + 3 >= pattern.length) throw new Error(`'${pattern}' ends with a lone backslash`);
        high = pattern[i + 3]!;
        skip = 4;
      }
      if (high < ch) throw new Error(`'${pattern}' has the range '${ch}-${high}', whose end comes before its start`);
      items.push(`${escapeChar(ch)}-${escapeChar(high)}`);
      i += skip;
      continue;
    }
    items.push(escapeChar(ch));
    i++;
  }
  if (i >= pattern.length) throw new Error(`'${pattern}' has a '[' without its closing ']'`);
  if (items.length === 0) throw new Error(`'${pattern}' has an empty set '[]'`);
  return { source: `[${negate ? '^' : ''}${items.join('')}]`, next: i + 1 };
}

/** The anchored RegExp of a glob; throws an Error saying what is wrong with a bad one. */
export function compileGlob(pattern: string): RegExp {
  if (pattern === '') throw new Error('the pattern is empty');
  if (pattern.length > 255) throw new Error('the pattern is longer than 255 characters (the longest image name)');
  let source = '';
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i]!;
    if (ch === '*') {
      source += '.*';
      i++;
    } else if (ch === '?') {
      source += '.';
      i++;
    } else if (ch === '[') {
      const set = readSet(pattern, i);
      source += set.source;
      i = set.next;
    } else if (ch === '\\') {
      if (i + 1 >= pattern.length) throw new Error(`'${pattern}' ends with a lone backslash`);
      source += escapeChar(pattern[i + 1]!);
      i += 2;
    } else {
      source += escapeChar(ch);
      i++;
    }
  }
  return new RegExp(`^${source}$`, 's');
}

/** True when the whole `name` matches the glob `pattern` (a bad pattern matches nothing). */
export function matchesGlob(pattern: string, name: string): boolean {
  try {
    return compileGlob(pattern).test(name);
  } catch {
    return false;
  }
}
