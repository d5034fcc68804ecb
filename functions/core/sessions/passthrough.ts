import { ExtraVarsError, parseExtraVars, type ExtraVarsMap } from './extra-vars.ts';
import { fieldError } from './validation.ts';

/**
 * `ansible_passthrough`, checked the way CFS checks it (shlex split, then argparse with only
 * `-e/--extra-vars`, `-f/--forks`, `--skip-tags`, `--start-at-task`, `-t/--tags`), plus rules
 * CFS lacks: options are data, never files or more options (no `-e @file`, no tag or task
 * value starting with `-` or `@`), and no extra var may set an `ansible_*` variable, because
 * connection variables (`ansible_connection`, `ansible_host`, ...) would let a playbook leave
 * the image root.
 */

const FIELD = 'ansible_passthrough';

interface AllowedOption {
  long: string;
  short?: string;
  integer?: boolean;
}

const ALLOWED: AllowedOption[] = [
  { long: '--extra-vars', short: '-e' },
  { long: '--forks', short: '-f', integer: true },
  { long: '--skip-tags' },
  { long: '--start-at-task' },
  { long: '--tags', short: '-t' },
];

const ALLOWED_TEXT = '-e/--extra-vars, -f/--forks, --skip-tags, --start-at-task, -t/--tags';

/** POSIX shell-like word splitting, as Python's `shlex.split` (no comments). */
export function shlexSplit(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else word += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) word += text[++i];
      else word += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\') {
      if (i + 1 >= text.length) throw fieldError(FIELD, 'ends with a lone backslash');
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) throw fieldError(FIELD, `has an unclosed ${quote} quote`);
  if (inWord) words.push(word);
  return words;
}

function looksLikeOption(word: string): boolean {
  return word.length > 1 && word.startsWith('-') && !/^-\d+$|^-\d*\.\d+$/.test(word);
}

function findOption(flag: string): AllowedOption {
  if (flag.startsWith('--')) {
    const exact = ALLOWED.find((o) => o.long === flag);
    if (exact) return exact;
    // argparse accepts unambiguous prefixes of long options (allow_abbrev).
    const prefixed = ALLOWED.filter((o) => flag.length > 2 && o.long.startsWith(flag));
    if (prefixed.length === 1) return prefixed[0]!;
    if (prefixed.length > 1) throw fieldError(FIELD, `option '${flag}' is ambiguous (${prefixed.map((o) => o.long).join(', ')})`);
  } else {
    const short = ALLOWED.find((o) => o.short === flag);
    if (short) return short;
  }
  throw fieldError(FIELD, `option '${flag}' is not allowed; only ${ALLOWED_TEXT} are`);
}

/**
 * Validates a passthrough string and returns it as normalized ansible-playbook argv words
 * (long option names, one value each), ready for the runner. Throws a ValidationError naming
 * `ansible_passthrough` otherwise.
 */
export function parsePassthrough(text: string): string[] {
  const words = shlexSplit(text);
  const argv: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--' || !looksLikeOption(word)) {
      throw fieldError(FIELD, `unexpected argument '${word}'; only ${ALLOWED_TEXT} with their values are allowed`);
    }
    let flag = word;
    let value: string | undefined;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      if (eq > 0) {
        flag = word.slice(0, eq);
        value = word.slice(eq + 1);
      }
    } else if (word.length > 2) {
      // argparse: `-eVALUE` and `-e=VALUE` both give VALUE.
      flag = word.slice(0, 2);
      value = word[2] === '=' ? word.slice(3) : word.slice(2);
    }
    const option = findOption(flag);
    if (value === undefined) {
      const next = words[i + 1];
      if (next === undefined || looksLikeOption(next)) throw fieldError(FIELD, `option '${flag}' expects one argument`);
      value = next;
      i++;
    }
    if (option.integer && !/^\d+$/.test(value)) throw fieldError(FIELD, `option '${flag}' expects an integer, not '${value}'`);
    if (option.integer && Number(value) < 1) throw fieldError(FIELD, `option '${flag}' must be at least 1`);
    if (option.long === '--extra-vars') assertSafeExtraVars(value);
    else if (!option.integer && /^[-@]/.test(value)) throw fieldError(FIELD, `the value of '${flag}' must not start with '-' or '@' (an option or a file name): '${value}'`);
    argv.push(option.long, value);
  }
  return argv;
}

function refuseKey(key: string): void {
  const bare = key.replace(/["'\s]/g, '');
  if (/^ansible_/i.test(bare)) {
    throw fieldError(FIELD, `extra var '${bare}' is not allowed: ansible_* variables control how Ansible connects and could leave the image root`);
  }
  // The runner's map of image roots, which its connection extra vars look hosts up in.
  if (/^cfs_image_roots$/i.test(bare)) throw fieldError(FIELD, `extra var '${bare}' is not allowed: the runner sets it to pin each host's image root`);
  // Magic variables: the pinned connection looks each host's root up by inventory_hostname.
  if (/^(inventory_hostname(_short)?|hostvars|groups|group_names|playbook_dir|omit)$/i.test(bare)) {
    throw fieldError(FIELD, `extra var '${bare}' is not allowed: it is one of Ansible's magic variables, which the runner relies on`);
  }
}

/**
 * Reads an `--extra-vars` value exactly as ansible-playbook does (extra-vars.ts: `@file`
 * refused, JSON/YAML when it starts with `{` or `[`, otherwise `key=value` words) and refuses
 * any form that would set an `ansible_*` variable. The runner hands the same data to Ansible
 * as `!unsafe` values, so a `{{ ... }}` in a value is never templated.
 */
export function assertSafeExtraVars(value: string): void {
  let data: ExtraVarsMap | undefined;
  try {
    data = parseExtraVars(value);
  } catch (error) {
    if (error instanceof ExtraVarsError) throw fieldError(FIELD, error.message);
    throw error;
  }
  for (const [key] of data?.entries ?? []) if (key.kind === 'str') refuseKey(key.value);
}
