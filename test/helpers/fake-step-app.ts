import type { Hono } from 'hono';
import { createApp } from '../../functions/api/app.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { FakeGit, MemoryConfigurations, MemoryOptions } from './cfs-fakes.ts';
import { fakeStepPorts, type FakeStepPorts } from './in-memory-ports.ts';

/** The API app and the step ports it reads through; `step.dispose()` removes the artifact store's temp dir. */
export interface FakeStepApp {
  step: FakeStepPorts;
  app: Hono;
}

/**
 * The API app over fakeStepPorts(): what the workflow's steps write (images, artifacts such as run
 * documents, runner progress and logs) is what the API reads, with the steps' clock and event log.
 * The test brings the session records it arranges and its own workflow fake; configurations,
 * options and git are in-memory fakes.
 */
export function startFakeStepApp(own: Pick<AppPorts, 'sessions' | 'workflow'>): FakeStepApp {
  const step = fakeStepPorts();
  const ports: AppPorts = {
    sessions: own.sessions,
    configurations: new MemoryConfigurations(),
    images: step.images,
    artifacts: step.artifacts,
    workflow: own.workflow,
    events: step.events,
    git: new FakeGit(),
    clock: step.clock,
    options: new MemoryOptions(),
  };
  return { step, app: createApp(ports) };
}
