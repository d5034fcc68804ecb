/**
 * A small evaluator of CloudWatch Logs JSON filter patterns, for the subset the template's metric
 * filters use: `{ <term> }` where a term is `$.a.b = "text"` or `$.a.b != "text"` (a `*` in
 * the text matches any characters), `$.a.b = 12` (or `!=`, `<`, `<=`, `>`, `>=`), a term in
 * parentheses, or terms joined by `&&` or by `||` (mixing the two needs parentheses). It exists
 * so tests can check a pattern against sample log events; anything outside the subset throws,
 * so a pattern it cannot judge fails its test instead of passing it.
 *
 * Semantics as CloudWatch Logs documents them ("Filter pattern syntax for metric filters",
 * "Using filter patterns to match terms in JSON log events"): a log event that is not a JSON
 * object matches nothing; a selector naming a missing property, or a property of another type
 * than the value, makes its comparison false.
 */
export function matchesJsonFilterPattern(pattern: string, message: string): boolean {
  const condition = parseJsonFilterPattern(pattern);
  let event: unknown;
  try {
    event = JSON.parse(message);
  } catch {
    return false;
  }
  return typeof event === 'object' && event !== null && !Array.isArray(event) && condition(event as Record<string, unknown>);
}

type Condition = (event: Record<string, unknown>) => boolean;
type Token = { kind: 'punct'; text: string } | { kind: 'selector'; path: string[] } | { kind: 'string'; value: string } | { kind: 'number'; value: number };

/** Parses a pattern into a predicate over a parsed log event; throws on syntax outside the subset. */
export function parseJsonFilterPattern(pattern: string): Condition {
  const tokens = tokenize(pattern);
  let at = 0;
  const peek = () => tokens[at];
  const take = (text: string) => {
    const token = tokens[at];
    if (token?.kind !== 'punct' || token.text !== text) throw new Error(`filter pattern ${pattern}: expected ${text} at token ${at}`);
    at++;
  };

  const comparison = (): Condition => {
    const token = peek();
    if (token?.kind === 'punct' && token.text === '(') {
      take('(');
      const inner = group();
      take(')');
      return inner;
    }
    if (token?.kind !== 'selector') throw new Error(`filter pattern ${pattern}: expected a $. selector at token ${at}`);
    at++;
    const operator = peek();
    if (operator?.kind !== 'punct' || !['=', '!=', '<', '<=', '>', '>='].includes(operator.text)) throw new Error(`filter pattern ${pattern}: expected a comparison at token ${at}`);
    at++;
    const value = peek();
    at++;
    const read = (event: Record<string, unknown>) => token.path.reduce<unknown>((node, key) => (typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined), event);
    if (value?.kind === 'string') {
      if (operator.text !== '=' && operator.text !== '!=') throw new Error(`filter pattern ${pattern}: ${operator.text} takes a number`);
      const wanted = new RegExp(`^${value.value.split('*').map(escapeRegExp).join('.*')}$`, 's');
      return (event) => {
        const field = read(event);
        return typeof field === 'string' && wanted.test(field) === (operator.text === '=');
      };
    }
    if (value?.kind === 'number') {
      const compare = NUMBER_COMPARISONS[operator.text]!;
      return (event) => {
        const field = read(event);
        return typeof field === 'number' && compare(field, value.value);
      };
    }
    throw new Error(`filter pattern ${pattern}: expected a quoted string or a number at token ${at - 1}`);
  };

  /** Comparisons joined by one operator throughout: `a && b && c` or `a || b`; mixing needs parentheses. */
  const group = (): Condition => {
    const operands = [comparison()];
    let operator: string | undefined;
    for (let next = peek(); next?.kind === 'punct' && (next.text === '&&' || next.text === '||'); next = peek()) {
      if (operator && next.text !== operator) throw new Error(`filter pattern ${pattern}: mixes && and || without parentheses`);
      operator = next.text;
      at++;
      operands.push(comparison());
    }
    return operator === '||' ? (event) => operands.some((c) => c(event)) : (event) => operands.every((c) => c(event));
  };

  take('{');
  const condition = group();
  take('}');
  if (at !== tokens.length) throw new Error(`filter pattern ${pattern}: unexpected text after the closing brace`);
  return condition;
}

const NUMBER_COMPARISONS: Record<string, (a: number, b: number) => boolean> = {
  '=': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

function tokenize(pattern: string): Token[] {
  const tokens: Token[] = [];
  const lexer = /\s*(?:(&&|\|\||!=|<=|>=|[{}()=<>])|(\$(?:\.[A-Za-z_][\w-]*)+)|"((?:[^"\\]|\\.)*)"|(-?\d+(?:\.\d+)?))/y;
  let rest = pattern.trim();
  while (rest.length > 0) {
    lexer.lastIndex = 0;
    const match = lexer.exec(rest);
    if (!match) throw new Error(`filter pattern ${pattern}: cannot read "${rest.slice(0, 20)}"`);
    if (match[1]) tokens.push({ kind: 'punct', text: match[1] });
    else if (match[2]) tokens.push({ kind: 'selector', path: match[2].slice(2).split('.') });
    else if (match[3] !== undefined) tokens.push({ kind: 'string', value: match[3].replace(/\\(.)/g, '$1') });
    else tokens.push({ kind: 'number', value: Number(match[4]) });
    rest = rest.slice(match[0].length).trimStart();
  }
  return tokens;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
