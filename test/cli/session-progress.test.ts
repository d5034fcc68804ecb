import { describe, expect, it } from 'vitest';
import { debugInstructions } from '../../functions/cli/commands/session-debug.ts';
import { frameLines, PlainRenderer, TerminalRenderer } from '../../functions/cli/progress/renderers.ts';
import { outcomeLine, sessionRows, type SessionView } from '../../functions/cli/progress/session-steps.ts';

const IMG = '11111111-1111-4111-8111-111111111111';
const NOW = new Date('2026-11-26T10:00:10Z');

function session(steps: NonNullable<SessionView['status']>['steps'], status = 'running', extra: Partial<NonNullable<SessionView['status']>> = {}): SessionView {
  return {
    name: 'example',
    target: { groups: [{ members: [IMG] }, { members: [IMG] }] },
    status: { session: { status, succeeded: status === 'complete' ? 'true' : 'none' }, layers: [{ name: 'base' }, { name: 'extra' }], steps, ...extra },
  };
}

const midRun = session([
  { name: 'validate', state: 'succeeded', start_time: '2026-11-26T10:00:00Z', end_time: '2026-11-26T10:00:00.400Z' },
  { name: 'stage', image_id: IMG, state: 'succeeded', start_time: '2026-11-26T10:00:01Z', end_time: '2026-11-26T10:00:01Z' },
  { name: 'inventory', state: 'succeeded', start_time: '2026-11-26T10:00:01Z', end_time: '2026-11-26T10:00:01Z' },
  { name: 'ansible', state: 'running', start_time: '2026-11-26T10:00:01Z' },
  { name: 'ansible', layer: 'base', state: 'running', start_time: '2026-11-26T10:00:05Z' },
]);

describe('the step list of a waiting client', () => {
  it('lists validate, stage per image, inventory, each layer, package per image and record, in order, with their states', () => {
    // Act
    const rows = sessionRows(midRun);
    // Assert
    expect(rows.map((r) => [r.label, r.state])).toEqual([
      ['validate images', 'succeeded'],
      [`stage ${IMG}`, 'succeeded'],
      ['render inventory', 'succeeded'],
      ['layer 0 base', 'running'],
      ['layer 1 extra', 'pending'],
      [`package ${IMG}`, 'pending'],
      ['record artifacts', 'pending'],
    ]);
  });

  it('shows steps that never ran in a finished session as skipped, and says how the session failed', () => {
    // Arrange
    const failed = session([{ name: 'validate', state: 'failed' }], 'complete', { failure: { step: 'validate', reason: 'image wait timeout' } });
    failed.status!.session!.succeeded = 'false';
    // Act
    const rows = sessionRows(failed);
    // Assert
    expect(rows.slice(1).every((r) => r.state === 'skipped')).toBe(true);
    expect(outcomeLine(failed)).toBe('session example failed at validate: image wait timeout');
  });

  it('draws a terminal frame with marks, a spinner on the running row and times, cut to the width', () => {
    // Act
    const lines = frameLines(midRun, NOW, 1, { columns: 40, color: false });
    // Assert
    expect(lines[0]).toBe('session example (running)');
    expect(lines[1]).toMatch(/^ {2}✔ validate images +…$/);
    expect(lines[4]).toMatch(/^ {2}⠙ layer 0 base/);
    expect(lines[5]).toMatch(/^ {2}· layer 1 extra$/);
    expect(lines.every((l) => l.length <= 39)).toBe(true);
    expect(frameLines(midRun, NOW, 1, { columns: 80, color: false })[4]).toMatch(/^ {2}⠙ layer 0 base +5\.0s$/);
  });

  it('redraws in place on a terminal: the second frame moves the cursor up over the first', () => {
    // Arrange
    const writes: string[] = [];
    const renderer = new TerminalRenderer({ isTTY: true, columns: 80, color: false, write: (t) => void writes.push(t) });
    // Act
    renderer.update(midRun, NOW);
    renderer.tick(NOW);
    renderer.finish(NOW);
    // Assert
    expect(writes[0]!.startsWith('\x1b[?25l')).toBe(true);
    expect(writes[1]!.startsWith('\x1b[8A')).toBe(true);
    expect(writes[1]).toContain('⠙ layer 0 base');
    expect(writes.at(-1)).toBe('\x1b[?25h');
  });

  it('prints one plain line per step change, without control characters', () => {
    // Arrange
    const lines: string[] = [];
    const renderer = new PlainRenderer((line) => void lines.push(line));
    const waiting = session([{ name: 'validate', state: 'running' }], 'pending', { message: `waiting for image(s) to be registered with a rootfs: ${IMG}` });
    // Act
    renderer.update(waiting, NOW);
    renderer.update(waiting, NOW);
    renderer.update(midRun, NOW);
    renderer.update(midRun, NOW);
    // Assert
    expect(lines).toEqual([
      `session example: waiting for image(s) to be registered with a rootfs: ${IMG}`,
      'validate images: running',
      'validate images: succeeded (0.4s)',
      `stage ${IMG}: succeeded (0.0s)`,
      'render inventory: succeeded (0.0s)',
      'layer 0 base: running',
    ]);
    expect(lines.join('\n')).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
  });
});

describe('cfs sessions debug', () => {
  it("prints this CLI's --enter and --rerun for each kept image root and layer, never a command stored with the hold", () => {
    // Arrange: a hold whose stored commands (as an older runner recorded them) point into the workspace.
    const held = {
      name: 'broken',
      status: {
        failure: { step: 'ansible', layer: 'second', reason: 'layer 1 failed' },
        debug: {
          until: '2026-11-26T11:00:00Z',
          workspace: '/data/work/workspaces/broken',
          inventory: '/data/work/workspaces/broken/inventory.yaml',
          images: [{ image_id: IMG, root: `/data/work/workspaces/broken/images/${IMG}`, enter: "'/bin/sh' '/data/work/workspaces/broken/sandbox.sh' 'chroot'" }],
          layers: [
            { index: 0, name: 'first', directory: '/d/0', command: "cd '/d/0' && sh /data/work/workspaces/broken/sandbox.sh" },
            { index: 1, name: 'second', directory: '/d/1', command: "cd '/d/1' && sh /data/work/workspaces/broken/sandbox.sh" },
          ],
        },
      },
    };
    // Act
    const text = debugInstructions(held);
    // Assert
    expect(text).toContain('until 2026-11-26T11:00:00Z');
    expect(text).toContain('cfs sessions release broken');
    expect(text).toContain(`  # image ${IMG} (/data/work/workspaces/broken/images/${IMG})\n  cfs sessions debug broken --enter ${IMG}`);
    expect(text).toContain("  # layer 1 'second' (failed)\n  cfs sessions debug broken --rerun 1");
    expect(text).not.toContain('sandbox.sh');
  });

  it('says so when the session holds nothing or its hold has ended', () => {
    // Act / Assert
    expect(() => debugInstructions({ name: 'plain', status: {} })).toThrow(/holds no workspace/);
    expect(() =>
      debugInstructions({ name: 'old', status: { debug: { until: 'u', released_at: '2026-11-26T10:30:00Z', workspace: '/w', inventory: '/w/i', images: [], layers: [] } } }),
    ).toThrow(/ended at 2026-11-26T10:30:00Z/);
  });
});
