import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './package-root.ts';

/** The state machine definition file, shared by the embedded engine and the CDK stack. */
export function aslPath(): string {
  return join(packageRoot(), 'statemachines', 'image-customization.asl.json');
}

/** Every `${Name}` placeholder of an ASL text, sorted. */
export function aslPlaceholders(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Za-z0-9]+)\}/g)].map((m) => m[1]!))].sort();
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
  return JSON.parse(filled) as Record<string, unknown>;
}
