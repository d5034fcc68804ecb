import { describe, expect, it } from 'vitest';
import { humanBytes, transferBar, transferLine } from '../../functions/cli/progress/transfer-bar.ts';

describe('the transfer progress bar', () => {
  it('draws the share done, the bytes in binary units and the rate, cut to the terminal width', () => {
    // Act
    const line = transferLine('rootfs', 3 * 1024 ** 3, 6 * 1024 ** 3, 30, 120);
    const cut = transferLine('rootfs', 1, 2, 1, 20);
    // Assert
    expect(line).toBe(`rootfs [############            ]  50%  3.0 GiB / 6.0 GiB  102.4 MiB/s`);
    expect(cut).toHaveLength(19);
    expect(humanBytes(512)).toBe('512 B');
    expect(humanBytes(1536 * 1024)).toBe('1.5 MiB');
  });

  it('prints a plain line per tenth of a big transfer off a terminal, and nothing for a small one', () => {
    // Arrange
    const lines: string[] = [];
    let now = 0;
    const bar = transferBar({ out: () => undefined, err: (line) => lines.push(line), env: {} }, () => now);
    const total = 100 * 1024 * 1024;
    // Act
    bar.start('big', total);
    for (let i = 0; i < 100; i++) {
      now += 100;
      bar.advance(total / 100);
    }
    bar.finish();
    bar.start('small', 1024);
    bar.advance(1024);
    bar.finish();
    // Assert
    expect(lines).toHaveLength(11);
    expect(lines[0]).toMatch(/^big \[ {24}\]   0%  0 B \/ 100\.0 MiB$/);
    expect(lines[10]).toMatch(/^big \[#{24}\] 100%  100\.0 MiB \/ 100\.0 MiB  10\.0 MiB\/s$/);
  });
});
