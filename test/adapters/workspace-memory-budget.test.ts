import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRunnerProcess } from '../../functions/adapters/local/process-runner.ts';
import { WorkspaceMemoryBudget } from '../../functions/adapters/local/workspace-memory-budget.ts';

const GIB = 2 ** 30;

describe('the server-wide workspace memory budget', () => {
  it('never grants two sessions together more than the budget, and a session gives back its grants when its workspace goes', () => {
    // Arrange
    const budget = new WorkspaceMemoryBudget(4 * GIB);

    // Act
    const first = budget.reserve('a', 3 * GIB);
    const second = budget.reserve('b', 2 * GIB);
    budget.releaseAll('a');
    const afterRelease = budget.reserve('b', 2 * GIB);

    // Assert
    expect([first, second, afterRelease]).toEqual([true, false, true]);
    expect(budget.inUse()).toBe(2 * GIB);
  });

  it('takes back part of a grant (a mount that failed) and refuses sizes that are not positive numbers', () => {
    // Arrange
    const budget = new WorkspaceMemoryBudget(GIB);
    budget.reserve('a', GIB);

    // Act
    budget.release('a', GIB / 2);
    const refused = [0, -1, Number.NaN, Number.POSITIVE_INFINITY].map((bytes) => budget.reserve('b', bytes));

    // Assert
    expect(budget.inUse()).toBe(GIB / 2);
    expect(refused).toEqual([false, false, false, false]);
  });
});

describe("a runner's memory requests over its IPC channel", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cfs-memory-ipc-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("are answered from the engine's budget, one answer per request id, and anything else on the channel is ignored", async () => {
    // Arrange: a stand-in runner that asks twice (the second does not fit), sends noise, and prints the answers.
    const script = join(dir, 'asker.mjs');
    await writeFile(
      script,
      [
        'const answers = [];',
        "process.on('message', (m) => { answers.push(m); if (answers.length === 2) { console.log(JSON.stringify(answers)); process.disconnect(); } });",
        "process.send({ type: 'something-else', id: 9 });",
        "process.send({ type: 'cfs-workspace-memory', id: 1, action: 'reserve', bytes: 3 * 2 ** 30 });",
        "process.send({ type: 'cfs-workspace-memory', id: 2, action: 'reserve', bytes: 2 * 2 ** 30 });",
      ].join('\n'),
    );
    const budget = new WorkspaceMemoryBudget(4 * GIB);

    // Act
    const runner = startRunnerProcess({
      session: 'asker',
      documentKey: 'unused',
      storeDir: dir,
      workspace: join(dir, 'ws'),
      logDir: dir,
      script,
      memory: { reserve: (bytes) => budget.reserve('asker', bytes), release: (bytes) => budget.release('asker', bytes) },
    });
    const code = await runner.exited;

    // Assert
    const printed = JSON.parse((await readFile(join(dir, 'asker.runner.log'), 'utf8')).trim()) as unknown;
    expect(code).toBe(0);
    expect(printed).toEqual([
      { type: 'cfs-workspace-memory', id: 1, granted: true },
      { type: 'cfs-workspace-memory', id: 2, granted: false },
    ]);
    expect(budget.inUse()).toBe(3 * GIB);
  });
});
