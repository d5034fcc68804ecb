import { readFileSync } from 'node:fs';
import { aslPath } from '../../core/workflow/asl-path.ts';

/** Every `${Name}` placeholder of an ASL text, sorted. */
export function aslPlaceholders(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Za-z0-9]+)\}/g)].map((m) => m[1]!))].sort();
}

type State = { Type?: string; Parameters?: unknown; TimeoutSecondsPath?: string; ItemProcessor?: { States: Record<string, State> }; Iterator?: { States: Record<string, State> } };

/** The path, inside `parameters`, of the field whose `.$` reference is `reference`. */
function parameterCarrying(parameters: unknown, reference: string, at = '$'): string | undefined {
  if (typeof parameters !== 'object' || parameters === null) return undefined;
  for (const [key, value] of Object.entries(parameters)) {
    if (key.endsWith('.$') && value === reference) return `${at}.${key.slice(0, -2)}`;
    const inner = parameterCarrying(value, reference, `${at}.${key}`);
    if (inner) return inner;
  }
  return undefined;
}

/**
 * aws-local-stepfunctions reads a Task's TimeoutSecondsPath from the parameters it sends, where
 * Step Functions reads it from the state's input. The same value is in both when a parameter
 * carries it (WaitForImages passes `poll_seconds`): point the path there, so the timeout is the
 * one AWS applies. Used by the embedded engine and by test:aws-local's stand-in alike.
 */
export function timeoutPathsOnParameters(states: Record<string, State>): void {
  for (const [name, state] of Object.entries(states)) {
    const inner = state.ItemProcessor ?? state.Iterator;
    if (inner) timeoutPathsOnParameters(inner.States);
    if (state.Type !== 'Task' || !state.TimeoutSecondsPath || state.Parameters === undefined) continue;
    const carried = parameterCarrying(state.Parameters, state.TimeoutSecondsPath);
    if (!carried) throw new Error(`${name}: TimeoutSecondsPath ${state.TimeoutSecondsPath} must also be passed in Parameters for the embedded engine to honour it`);
    state.TimeoutSecondsPath = carried;
  }
}

/**
 * The definition with each placeholder filled for the embedded engine: a syntactically valid
 * ARN that names the placeholder, never called (every Task has a local handler).
 */
export function localDefinition(): Record<string, unknown> {
  const text = readFileSync(aslPath(), 'utf8');
  const filled = text.replace(/\$\{([A-Za-z0-9]+)\}/g, (_m, name: string) =>
    name.endsWith('FunctionArn') ? `arn:aws:lambda:local:000000000000:function:${name.replace(/Arn$/, '')}` : `local-${name}`,
  );
  const definition = JSON.parse(filled) as { States: Record<string, State> };
  timeoutPathsOnParameters(definition.States);
  return definition;
}
