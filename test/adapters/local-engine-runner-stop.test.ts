import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalWorkflowEngine } from '../../functions/adapters/local/local-workflow-engine.ts';
import { startRunnerProcess } from '../../functions/adapters/local/process-runner.ts';
import { processFileOf, WORKSPACE_MARKER } from '../../functions/runner/workspace.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../functions/steps/step-ports.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';
import { tempDirPerTest } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';

const A = '11111111-1111-4111-8111-111111111111';
const STUBBORN_RUNNER = join(import.meta.dirname, 'fixtures', 'stubborn-runner.mjs');
const GRACE_SECONDS = 1;

interface StartedRunner {
  runner: number;
  helper: number;
  tool: number;
  marker: string;
  record: string;
}

/** True while the process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('stopping a runner that ignores SIGTERM (a deleted session, a server shutting down)', () => {
  const workDir = tempDirPerTest('cfs-runner-stop-');
  let ports: FakeStepPorts;
  let engine: LocalWorkflowEngine;
  const logged: string[] = [];
  const started: StartedRunner[] = [];

  beforeEach(() => {
    ports = fakeStepPorts();
    ports.settings = async () => ({ ...DEFAULT_WORKFLOW_SETTINGS, imageWaitTimeoutSeconds: 600, imagePollIntervalSeconds: 5, runnerStopGraceSeconds: GRACE_SECONDS });
    engine = new LocalWorkflowEngine({
      ports,
      storeDir: join(workDir(), 'store'),
      workDir: workDir(),
      maxConcurrentRuns: 2,
      events: { subscribe: () => undefined },
      // The real child-process runner, with a program that misbehaves in place of dist/runner.mjs.
      startRunner: (options) => startRunnerProcess({ ...options, script: STUBBORN_RUNNER }),
      progressPollMs: 50,
      log: (line) => logged.push(line),
    });
  });
  afterEach(async () => {
    await engine.close();
    // Whatever a failed test left running goes with it.
    for (const pid of started.flatMap((s) => [s.runner, s.helper, s.tool])) if (alive(pid)) process.kill(pid, 'SIGKILL');
    started.length = 0;
    logged.length = 0;
    ports.dispose();
  });

  /** Starts a session whose runner is the stand-in, and waits until the runner says it is ready. */
  async function runningSession(name: string): Promise<{ execution: string; runner: StartedRunner; log: string }> {
    await registerImage(ports, A, 'base');
    await ports.sessionTable.create(pendingSession(name, { Compute: [A] }));
    const execution = await engine.start(name);
    const log = join(workDir(), 'runner-logs', `${name}.runner.log`);
    const runner = await waitFor(
      async () => {
        const line = existsSync(log) ? readFileSync(log, 'utf8').split('\n').find((l) => l.startsWith('{"ready"')) : undefined;
        return line ? (JSON.parse(line) as StartedRunner) : undefined;
      },
      15_000,
      `the runner of ${name} to start`,
      25,
    );
    started.push(runner);
    return { execution, runner, log };
  }

  it("kills the runner's process group and the groups it recorded once the grace period passed, then fails the session saying so and removes the workspace", async () => {
    // Arrange
    const { execution, runner, log } = await runningSession('stubborn');
    const workspace = engine.workspaceOf('stubborn');
    expect([runner.marker, runner.record]).toEqual([join(workspace, WORKSPACE_MARKER), processFileOf(workspace)]);
    expect([runner.runner, runner.helper, runner.tool].every(alive)).toBe(true);
    const stopAt = performance.now();
    // Act
    await engine.stop('stubborn', execution);
    await engine.idle();
    // Assert
    const took = performance.now() - stopAt;
    expect(readFileSync(log, 'utf8')).toContain('SIGTERM ignored');
    expect(took).toBeGreaterThanOrEqual(GRACE_SECONDS * 1000);
    expect(took).toBeLessThan(GRACE_SECONDS * 1000 + 8_000);
    expect({ runner: alive(runner.runner), helper: alive(runner.helper), tool: alive(runner.tool) }).toEqual({ runner: false, helper: false, tool: false });
    const session = await ports.sessions.get('stubborn');
    expect(session?.status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
    expect(session?.status.failure?.reason).toBe(`the session was deleted while it ran; its runner did not stop within ${GRACE_SECONDS}s of SIGTERM and was killed (SIGKILL)`);
    expect(existsSync(workspace)).toBe(false);
    expect(existsSync(processFileOf(workspace))).toBe(false);
    expect(logged.some((line) => line.includes('did not stop within 1s of SIGTERM; killing its process group'))).toBe(true);
  });

  it('bounds the wait of a server shutting down the same way', async () => {
    // Arrange
    const { runner } = await runningSession('stubborn-at-shutdown');
    const workspace = engine.workspaceOf('stubborn-at-shutdown');
    // Act
    await engine.close();
    // Assert
    expect([runner.runner, runner.helper, runner.tool].some(alive)).toBe(false);
    expect((await ports.sessions.get('stubborn-at-shutdown'))?.status.failure?.reason).toBe(
      `interrupted: the server shut down while the session ran; its runner did not stop within ${GRACE_SECONDS}s of SIGTERM and was killed (SIGKILL)`,
    );
    expect(existsSync(workspace)).toBe(false);
  });

  it('kills nothing when the runner stops on SIGTERM within the grace period', async () => {
    // Arrange
    const { execution, log } = await runningSession('obeys-sigterm');
    // Act
    await engine.stop('obeys-sigterm', execution);
    await engine.idle();
    // Assert
    expect(readFileSync(log, 'utf8')).toContain('SIGTERM: stopping');
    expect((await ports.sessions.get('obeys-sigterm'))?.status.failure?.reason).toBe('the session was deleted while it ran');
    expect(logged.filter((line) => line.includes('killing its process group'))).toEqual([]);
    expect(existsSync(engine.workspaceOf('obeys-sigterm'))).toBe(false);
  });
});
