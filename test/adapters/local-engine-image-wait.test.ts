import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalWorkflowEngine } from '../../functions/adapters/local/local-workflow-engine.ts';
import type { RunnerProcess } from '../../functions/adapters/local/process-runner.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../functions/steps/step-ports.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';
import { tempDirPerTest } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait.ts';

const A = '11111111-1111-4111-8111-111111111111';
const POLL_SECONDS = 20;

describe("the embedded engine's image wait", () => {
  const workDir = tempDirPerTest('cfs-image-wait-');
  let ports: FakeStepPorts;
  let engine: LocalWorkflowEngine;
  let runnerAskedAt: number | undefined;

  beforeEach(() => {
    ports = fakeStepPorts();
    ports.settings = async () => ({ ...DEFAULT_WORKFLOW_SETTINGS, imageWaitTimeoutSeconds: 600, imagePollIntervalSeconds: POLL_SECONDS });
    runnerAskedAt = undefined;
    engine = new LocalWorkflowEngine({
      ports,
      storeDir: `${workDir()}/store`,
      workDir: workDir(),
      maxConcurrentRuns: 1,
      // No bus: the Image Registered event of the test's registration is never heard, as when it came before the wait listened.
      events: { subscribe: () => undefined },
      // The wait is under test, not the runner: reaching RunAnsible is the end of it.
      startRunner: (): RunnerProcess => {
        runnerAskedAt = performance.now();
        return { exited: Promise.resolve(1), terminate: () => undefined, kill: () => undefined, pid: undefined };
      },
      log: () => undefined,
    });
  });
  afterEach(async () => {
    await engine.close();
    ports.dispose();
  });

  it('looks once more when it starts listening, so an image registered after ValidateImages looked does not wait a poll interval', async () => {
    // Arrange: the image is registered right after ValidateImages found it missing, before the wait listens.
    const lookups: string[] = [];
    const get = ports.images.get.bind(ports.images);
    ports.images.get = async (id, options) => {
      const image = await get(id, options);
      lookups.push(image ? 'found' : 'missing');
      if (!image && id === A && !lookups.includes('registered')) {
        await registerImage(ports, A, 'base');
        lookups.push('registered');
      }
      return image;
    };
    await ports.sessionTable.create(pendingSession('late-image', { Compute: [A] }));
    // Act
    const startedAt = performance.now();
    await engine.start('late-image');
    await waitFor(async () => runnerAskedAt, 10_000, 'the session to reach RunAnsible', 20);
    // Assert
    expect(lookups.slice(0, 3)).toEqual(['missing', 'registered', 'found']);
    expect(runnerAskedAt! - startedAt).toBeLessThan(3_000);
    await engine.idle();
    // The stand-in runner records nothing, so the session ends there: past the wait, not in it.
    expect((await ports.sessions.get('late-image'))?.status.failure?.step).toBe('ansible');
  });
});
