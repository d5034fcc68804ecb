import { describe, expect, it } from 'vitest';
import { globProblem, matchesGlob } from '../../functions/core/automations/glob.ts';

describe('image name globs', () => {
  it.each([
    ['compute-base-*', 'compute-base-1', true],
    ['compute-base-*', 'compute-base-', true],
    ['compute-base-*', 'xcompute-base-1', false],
    ['compute-?', 'compute-1', true],
    ['compute-?', 'compute-12', false],
    ['compute-[0-9]', 'compute-7', true],
    ['compute-[0-9]', 'compute-x', false],
    ['compute-[!0-9]', 'compute-x', true],
    ['compute-[^0-9]', 'compute-7', false],
    ['img-[ab]*', 'img-b2', true],
    ['img-[]a]', 'img-]', true],
    ['a.b', 'axb', false],
    ['a+b(c)', 'a+b(c)', true],
    ['literal\\*', 'literal*', true],
    ['literal\\*', 'literalx', false],
    ['*', 'any name at all', true],
  ])("'%s' against '%s' is %s", (pattern, name, expected) => {
    // Arrange / Act
    const matched = matchesGlob(pattern, name);
    // Assert
    expect(matched).toBe(expected);
  });

  it.each([
    ['compute-[0-9', "without its closing ']'"],
    ['compute-[]', "without its closing ']'"],
    ['compute-[9-0]', 'whose end comes before its start'],
    ['trailing\\', 'lone backslash'],
    ['', 'empty'],
  ])("refuses '%s' saying why", (pattern, why) => {
    // Arrange / Act
    const problem = globProblem(pattern);
    // Assert
    expect(problem).toContain(why);
    expect(matchesGlob(pattern, 'anything')).toBe(false);
  });
});
