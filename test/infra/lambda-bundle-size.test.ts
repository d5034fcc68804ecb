import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lambdaEntryNames } from '../../lib/bundles.ts';
import { lambdaBundlePath } from './lambda-bundles.ts';

/**
 * The bound every deployed Lambda bundle stays under (1 MB, minified): a larger bundle is a
 * slower cold start. A route that would push the API past it moves to a function of its own
 * rather than raising this number.
 */
const MAX_BUNDLE_BYTES = 1_000_000;

describe('the Lambda bundles', () => {
  it.each(lambdaEntryNames())('%s stays under 1 MB', (name) => {
    // Act
    const size = statSync(lambdaBundlePath(name)).size;
    // Assert
    expect(size, `dist/lambda/${name}/index.mjs is ${size} bytes`).toBeLessThan(MAX_BUNDLE_BYTES);
  });

  it('exist for every handler in functions/handlers', () => {
    // Act
    const names = lambdaEntryNames();
    // Assert
    expect(names).toEqual(expect.arrayContaining(['api', 'cleanup', 'execution-ended', 'trigger', 'validate-image']));
    for (const name of names) expect(statSync(lambdaBundlePath(name)).isFile(), name).toBe(true);
  });
});
