import { describe, expect, it } from 'vitest';
import { parseFindSeconds } from '../../functions/runner/change-sets/mtimes.ts';

describe("find's %T@ as nanoseconds", () => {
  it('reads the ten fraction digits find prints, whole seconds, and times before 1970 (a negative second plus a positive fraction)', () => {
    // Act
    const values = ['1700000000.1234567890', '1700000000', '-6.7500000000'].map(parseFindSeconds);
    // Assert
    expect(values).toEqual([1700000000123456789n, 1700000000000000000n, -5250000000n]);
    expect(() => parseFindSeconds('soon')).toThrow(/not seconds/);
  });
});
