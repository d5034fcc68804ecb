import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';

/**
 * One `--extra-vars` value read the way ansible-playbook 2.14 reads it (`load_extra_vars`):
 * JSON first, else YAML 1.1 when it starts with `{` or `[`, else `key=value` words
 * (`parse_kv`). The result keeps each scalar's type as PyYAML would resolve it, so the runner
 * can write the same data back as a YAML file in which every string is `!unsafe` (never
 * templated) and nothing else changes. The control plane uses the same reading to check keys.
 */

/** A scalar that is not a string keeps its source text: PyYAML's constructor for its tag reads it. */
type TypedScalarKind = 'int' | 'float' | 'bool' | 'null' | 'timestamp';

export type ExtraVar =
  | { kind: 'str'; value: string }
  | { kind: TypedScalarKind; source: string }
  | { kind: 'seq'; items: ExtraVar[] }
  | { kind: 'map'; entries: Array<[ExtraVar, ExtraVar]> };

export type ExtraVarsMap = Extract<ExtraVar, { kind: 'map' }>;

/** Why an extra-vars value cannot be read (the caller names the field or the runner phase). */
export class ExtraVarsError extends Error {
  override readonly name = 'ExtraVarsError';
}

const TAG = 'tag:yaml.org,2002:';
const MAX_DEPTH = 64;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** PyYAML's implicit resolvers (yaml/resolver.py), which Ansible's loader uses for plain scalars. */
const IMPLICIT: Array<[TypedScalarKind, RegExp]> = [
  ['bool', /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/],
  [
    'float',
    /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
  ],
  ['int', /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/],
  ['null', /^(?:~|null|Null|NULL|)$/],
  [
    'timestamp',
    /^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$/,
  ],
];

/** Explicit scalar tags PyYAML's safe constructor and Ansible's loader build, and what they make. */
const EXPLICIT_SCALAR: Record<string, TypedScalarKind | 'str'> = {
  [`${TAG}str`]: 'str',
  '!unsafe': 'str',
  [`${TAG}int`]: 'int',
  [`${TAG}float`]: 'float',
  [`${TAG}bool`]: 'bool',
  [`${TAG}null`]: 'null',
  [`${TAG}timestamp`]: 'timestamp',
};

/** Reads one `--extra-vars` value; undefined for an empty one (Ansible skips it). */
export function parseExtraVars(value: string): ExtraVarsMap | undefined {
  if (value === '') return undefined;
  if (value.startsWith('@')) throw new ExtraVarsError('extra vars from files (@FILE) are not allowed');
  if (value.startsWith('/') || value.startsWith('.')) throw new ExtraVarsError(`extra vars '${value}' look like a file name; files are not allowed`);
  if (LONE_SURROGATE.test(value)) throw new ExtraVarsError('extra vars are not valid Unicode (a lone surrogate)');
  let data: ExtraVar;
  if (value.startsWith('{') || value.startsWith('[')) {
    data = parseStructured(value);
  } else {
    data = { kind: 'map', entries: Object.entries(parseKeyValue(value)).map(([k, v]) => [str(k), str(v)]) };
  }
  if (data.kind !== 'map') throw new ExtraVarsError('extra vars in YAML/JSON form must be a mapping of variable names to values');
  return data;
}

function str(value: string): ExtraVar {
  return { kind: 'str', value };
}

/** `json.loads` first (as Ansible's DataLoader), else YAML 1.1 as PyYAML reads it. */
function parseStructured(text: string): ExtraVar {
  let json = true;
  try {
    JSON.parse(text);
  } catch {
    json = false;
  }
  const doc = parseDocument(text, { schema: 'failsafe', version: '1.1', uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) throw new ExtraVarsError(`extra vars are not valid YAML/JSON: ${doc.errors[0]!.message.split('\n')[0]}`);
  return convert(doc.contents, doc, json, 0);
}

function convert(node: unknown, doc: Document, json: boolean, depth: number): ExtraVar {
  if (depth > MAX_DEPTH) throw new ExtraVarsError(`extra vars nest deeper than ${MAX_DEPTH} levels`);
  if (isAlias(node)) return convert(node.resolve(doc), doc, json, depth + 1);
  if (node === null || node === undefined) return { kind: 'null', source: '' };
  if (isScalar(node)) return scalar(node.value as string, node.type === 'PLAIN', node.tag, json);
  if (isSeq(node)) {
    collectionTag(node.tag, `${TAG}seq`);
    return { kind: 'seq', items: node.items.map((item) => convert(item, doc, json, depth + 1)) };
  }
  if (isMap(node)) {
    collectionTag(node.tag, `${TAG}map`);
    const entries = new Map<string, [ExtraVar, ExtraVar]>();
    // As a Python dict: a repeated key takes the later value and keeps its first position.
    const set = (key: ExtraVar, value: ExtraVar) => entries.set(JSON.stringify(key), [key, value]);
    const merged: Array<[ExtraVar, ExtraVar]> = [];
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      if (!json && isScalar(keyNode) && keyNode.type === 'PLAIN' && keyNode.value === '<<' && (!keyNode.tag || keyNode.tag === `${TAG}merge`)) {
        merged.push(...mergeSources(pair.value, doc, depth));
        continue;
      }
      const key = convert(keyNode, doc, json, depth + 1);
      if (key.kind === 'seq' || key.kind === 'map') throw new ExtraVarsError('extra vars may not use a list or mapping as a key');
      set(key, convert(pair.value, doc, json, depth + 1));
    }
    // PyYAML's flatten_mapping: merged pairs come first, so the mapping's own keys win.
    const own = [...entries.values()];
    entries.clear();
    for (const [key, value] of [...merged, ...own]) set(key, value);
    const result: ExtraVar = { kind: 'map', entries: [...entries.values()] };
    return json ? unwrapAnsibleJson(result) : result;
  }
  throw new ExtraVarsError('extra vars hold a YAML node that is not a scalar, list or mapping');
}

/** The pairs a `<<` merge key brings in: one mapping, or a list of them where the earlier wins. */
function mergeSources(value: unknown, doc: Document, depth: number): Array<[ExtraVar, ExtraVar]> {
  const resolved = isAlias(value) ? value.resolve(doc) : value;
  const sources = isSeq(resolved) ? resolved.items : [resolved];
  const pairs: Array<[ExtraVar, ExtraVar]> = [];
  for (const source of [...sources].reverse()) {
    const data = convert(source, doc, false, depth + 1);
    if (data.kind !== 'map') throw new ExtraVarsError('a YAML merge key (<<) must name a mapping or a list of mappings');
    pairs.push(...data.entries);
  }
  return pairs;
}

function collectionTag(tag: string | undefined, expected: string): void {
  if (tag && tag !== expected && tag !== '!unsafe') throw new ExtraVarsError(`the YAML tag ${shortTag(tag)} is not supported in extra vars`);
}

function shortTag(tag: string): string {
  return tag.startsWith(TAG) ? `!!${tag.slice(TAG.length)}` : tag;
}

function scalar(value: string, plain: boolean, tag: string | undefined, json: boolean): ExtraVar {
  if (tag) {
    const kind = EXPLICIT_SCALAR[tag];
    if (!kind) throw new ExtraVarsError(`the YAML tag ${shortTag(tag)} is not supported in extra vars${tag === '!vault' ? ' (the runner has no vault password)' : ''}`);
    if (kind === 'str') return str(value);
    // PyYAML's constructors for explicit tags are looser than its implicit resolvers; a value
    // they cannot read fails when Ansible loads the file, with Ansible's own message.
    if (kind === 'bool' && !/^(yes|no|true|false|on|off)$/i.test(value)) throw new ExtraVarsError(`'${value}' is not a valid !!bool value`);
    return { kind, source: value };
  }
  if (!plain) return str(value);
  if (json) {
    if (value === 'true' || value === 'false') return { kind: 'bool', source: value };
    if (value === 'null') return { kind: 'null', source: value };
    return { kind: /^-?(0|[1-9][0-9]*)$/.test(value) ? 'int' : 'float', source: value };
  }
  if (value === '=' || value === '<<') throw new ExtraVarsError(`a plain '${value}' is a YAML ${value === '=' ? 'value' : 'merge'} key, which Ansible cannot load as a value`);
  for (const [kind, pattern] of IMPLICIT) if (pattern.test(value)) return { kind, source: value };
  return str(value);
}

/** AnsibleJSONDecoder's object hook: `{"__ansible_unsafe": v}` is v (unsafe); vault values need a password the runner lacks. */
function unwrapAnsibleJson(map: ExtraVarsMap): ExtraVar {
  for (const [key, value] of map.entries) {
    if (key.kind !== 'str') continue;
    if (key.value === '__ansible_vault') throw new ExtraVarsError('vault-encrypted extra vars are not supported (the runner has no vault password)');
    if (key.value === '__ansible_unsafe') return value;
  }
  return map;
}

// --- key=value words: Ansible's parse_kv, split_args, _decode_escapes and unquote -----------

/** `parse_kv(value)` without check_raw: words without `=` end up joined in `_raw_params`. */
export function parseKeyValue(text: string): Record<string, string> {
  const options: Record<string, string> = {};
  const raw: string[] = [];
  for (const original of splitArgs(text)) {
    const word = decodeEscapes(original);
    let pos = 0;
    let found = -1;
    for (;;) {
      pos = word.indexOf('=', pos + 1);
      if (pos < 0) break;
      if (word[pos - 1] !== '\\') {
        found = pos;
        break;
      }
    }
    if (found < 0) {
      raw.push(word.includes('=') ? word.replace(/\\=/g, '=') : original);
      continue;
    }
    options[word.slice(0, found).trim()] = unquote(word.slice(found + 1).trim());
  }
  if (raw.length > 0) options._raw_params = joinArgs(raw);
  return options;
}

function unquote(data: string): string {
  const quoted = data.length > 1 && data[0] === data[data.length - 1] && (data[0] === '"' || data[0] === "'") && data[data.length - 2] !== '\\';
  return quoted ? data.slice(1, -1) : data;
}

function joinArgs(words: string[]): string {
  let result = '';
  for (const word of words) result += result.length === 0 || result.endsWith('\n') ? word : ` ${word}`;
  return result;
}

const SINGLE_ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** Python's unicode-escape decoding of the sequences Ansible's `_ESCAPE_SEQUENCE_RE` matches. */
function decodeEscapes(word: string): string {
  return word.replace(/\\U[0-9a-fA-F]{8}|\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|\\N\{[^}]+\}|\\[\\'"abfnrtv]/g, (match) => {
    const kind = match[1]!;
    if (kind === 'N') throw new ExtraVarsError(`the escape ${match} (a Unicode name) is not supported in key=value extra vars`);
    if (kind === 'U' || kind === 'u' || kind === 'x') {
      const code = parseInt(match.slice(2), 16);
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) throw new ExtraVarsError(`the escape ${match} is not a Unicode character`);
      return String.fromCodePoint(code);
    }
    return SINGLE_ESCAPES[kind]!;
  });
}

function quoteState(token: string, quote: string | undefined): string | undefined {
  for (let i = 0; i < token.length; i++) {
    const ch = token[i]!;
    if ((ch === '"' || ch === "'") && (i === 0 || token[i - 1] !== '\\')) {
      if (quote) {
        if (ch === quote) quote = undefined;
      } else {
        quote = ch;
      }
    }
  }
  return quote;
}

function countBlocks(token: string, depth: number, open: string, close: string): number {
  const opened = token.split(open).length - 1;
  const closed = token.split(close).length - 1;
  if (opened === closed) return depth;
  return Math.max(0, depth + opened - closed);
}

/** Ansible's `split_args`: whitespace splits, except inside quotes and Jinja2 blocks. */
export function splitArgs(args: string): string[] {
  const params: string[] = [];
  const items = args.split('\n');
  let quote: string | undefined;
  let insideQuotes = false;
  let printDepth = 0;
  let blockDepth = 0;
  let commentDepth = 0;
  const appendToLast = (text: string) => {
    if (params.length === 0) throw new ExtraVarsError('key=value extra vars could not be split');
    params[params.length - 1] += text;
  };
  items.forEach((item, itemIndex) => {
    const tokens = item.split(' ');
    let lineContinuation = false;
    tokens.forEach((token, index) => {
      if (token.length === 0 && index !== 0) {
        appendToLast(' ');
        return;
      }
      if (token === '\\' && !insideQuotes) {
        lineContinuation = true;
        return;
      }
      const wasInsideQuotes = insideQuotes;
      quote = quoteState(token, quote);
      insideQuotes = quote !== undefined;
      let appended = false;
      const inBlock = () => printDepth > 0 || blockDepth > 0 || commentDepth > 0;
      if (insideQuotes && !wasInsideQuotes && !inBlock()) {
        params.push(token);
        appended = true;
      } else if (inBlock() || insideQuotes || wasInsideQuotes) {
        if (index === 0 && wasInsideQuotes) appendToLast(token);
        else if (tokens.length > 1) appendToLast(`${index > 0 ? ' ' : ''}${token}`);
        else appendToLast(`\n${token}`);
        appended = true;
      }
      const before = [printDepth, blockDepth, commentDepth];
      printDepth = countBlocks(token, printDepth, '{{', '}}');
      if (printDepth !== before[0] && !appended) {
        params.push(token);
        appended = true;
      }
      blockDepth = countBlocks(token, blockDepth, '{%', '%}');
      if (blockDepth !== before[1] && !appended) {
        params.push(token);
        appended = true;
      }
      commentDepth = countBlocks(token, commentDepth, '{#', '#}');
      if (commentDepth !== before[2] && !appended) {
        params.push(token);
        appended = true;
      }
      if (!inBlock() && !insideQuotes && !appended && token !== '') params.push(token);
    });
    if (items.length > 1 && itemIndex !== items.length - 1 && !lineContinuation) appendToLast('\n');
  });
  if (printDepth || blockDepth || commentDepth || insideQuotes) {
    throw new ExtraVarsError('key=value extra vars have an unbalanced Jinja2 block or quote');
  }
  return params;
}

// --- writing them back, every string !unsafe ---------------------------------------------

/** A double-quoted YAML scalar PyYAML reads back exactly: ASCII only, everything else escaped. */
function quoted(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (code >= 0x20 && code <= 0x7e) out += ch;
    else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

function emit(value: ExtraVar, asKey = false): string {
  switch (value.kind) {
    case 'str':
      // Keys are names, never templated; values are data, never templated either.
      return asKey ? quoted(value.value) : `!unsafe ${quoted(value.value)}`;
    case 'seq':
      return `[${value.items.map((item) => emit(item)).join(', ')}]`;
    case 'map':
      return `{${value.entries.map(([k, v]) => `${emit(k, true)}: ${emit(v)}`).join(', ')}}`;
    default:
      return `!!${value.kind} ${quoted(value.source)}`;
  }
}

/**
 * The YAML text of an extra-vars file: the same data, with every string value (at any depth)
 * tagged `!unsafe`, so Ansible hands it to tasks as the literal text and templates nothing.
 */
export function unsafeExtraVarsYaml(vars: ExtraVarsMap): string {
  const header = '# Written by the CFS runner: ansible_passthrough extra vars, every string !unsafe (never templated).\n';
  if (vars.entries.length === 0) return `${header}{}\n`;
  return header + vars.entries.map(([k, v]) => `${emit(k, true)}: ${emit(v)}\n`).join('');
}
