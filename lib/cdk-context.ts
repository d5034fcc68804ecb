import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT_DIR } from './bundles.ts';

/**
 * The context of cdk.json (feature flags and `cfs:*` settings). The CLI passes it to lib/app.ts;
 * tests that build the stack in-process pass it to their App, so they synthesize what `cdk
 * synth` does.
 */
export function cdkJsonContext(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const { context } = JSON.parse(readFileSync(join(ROOT_DIR, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return { ...context, ...overrides };
}
