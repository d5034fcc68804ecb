import './promise-polyfill.ts';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import type { ProductEvent } from '../../ports/event-publisher.ts';
import type { WorkflowStarter } from '../../ports/workflow-starter.ts';
import { cleanup } from '../../steps/cleanup.ts';
import { failSession } from '../../steps/fail-session.ts';
import { packageAndUpload } from '../../steps/package-and-upload.ts';
import { recordArtifacts } from '../../steps/record-artifact.ts';
import { renderInventoryStep } from '../../steps/render-inventory.ts';
import { stageImage } from '../../steps/stage-image.ts';
import type { StepPorts } from '../../steps/step-ports.ts';
import { validateImages } from '../../steps/validate-image.ts';
import { localDefinition } from './asl-definition.ts';
import { ConcurrencyGate } from './concurrency-gate.ts';
import { startRunnerProcess, type RunnerProcess } from './process-runner.ts';

/** Subscribes to the in-process bus (only `Image Registered` is needed here). */
export interface LocalEventSource {
  subscribe(detailType: ProductEvent['detailType'], handler: (event: ProductEvent) => void | Promise<void>): unknown;
}

export interface LocalEngineOptions {
  ports: StepPorts;
  /** The directory of the filesystem artifact store (the runner reads and writes it directly). */
  storeDir: string;
  /** Runner workspaces and runner logs live below this directory. */
  workDir: string;
  /** How many runners (RunAnsible tasks) may run at once; waiting sessions take no slot. */
  maxConcurrentRuns: number;
  events: LocalEventSource;
  /** Hooks tests use to produce faults the real parts cannot (a runner that never starts, say). */
  startRunner?: typeof startRunnerProcess;
}

interface Execution {
  id: string;
  abort: () => void;
  runner?: RunnerProcess;
  done: Promise<void>;
}

/** An ECS-style failure: the state machine sees only States.TaskFailed, the outcome says why. */
class TaskFailed extends Error {
  override readonly name = 'States.TaskFailed';
}

/**
 * The embedded workflow engine: runs `statemachines/image-customization.asl.json` with
 * aws-local-stepfunctions, every Task state mapped by name to the same step code the Lambdas
 * run, `RunAnsible` to the runner as a child process, and `WaitForImages` to a wait that an
 * `Image Registered` event ends at once (the local stand-in for a task token).
 */
export class LocalWorkflowEngine implements WorkflowStarter {
  private readonly machine = new StateMachine(localDefinition() as never, { validationOptions: { checkPaths: true, checkArn: true } });
  private readonly executions = new Map<string, Execution>();
  private readonly imageWaiters = new Map<string, { missing: Set<string>; wake: () => void }>();
  private readonly runs: ConcurrencyGate;

  constructor(private readonly options: LocalEngineOptions) {
    this.runs = new ConcurrencyGate(Math.max(1, options.maxConcurrentRuns));
    options.events.subscribe('Image Registered', (event) => this.imageRegistered(String(event.detail.id ?? '')));
  }

  private workspaceOf(session: string): string {
    return join(this.options.workDir, 'workspaces', session);
  }

  async start(sessionName: string): Promise<string> {
    const running = this.executions.get(sessionName);
    if (running) return running.id;
    const id = `local:${sessionName}:${randomUUID()}`;
    const execution = this.machine.run({ session: sessionName }, {
      noThrowOnAbort: true,
      context: { Execution: { Id: id, Input: { session: sessionName }, StartTime: new Date().toISOString() }, Task: { Token: `local:${sessionName}` } },
      overrides: { taskResourceLocalHandlers: this.handlers(sessionName) as never },
    });
    const entry: Execution = {
      id,
      abort: execution.abort,
      done: execution.result.then(
        () => undefined,
        // The state machine's own failure path already recorded the session's failure.
        () => undefined,
      ).finally(() => {
        if (this.executions.get(sessionName) === entry) this.executions.delete(sessionName);
      }),
    };
    this.executions.set(sessionName, entry);
    return id;
  }

  async stop(sessionName: string, executionId: string): Promise<void> {
    const execution = this.executions.get(sessionName);
    if (!execution || execution.id !== executionId) return;
    await this.cancel(sessionName, execution, 'the session was deleted while it ran');
  }

  /**
   * Aborting skips the state machine's Catch (as StopExecution does in AWS), so the clean-up of
   * the failure path runs here: stop the runner, record the failure, remove uploads and workspace.
   */
  private async cancel(sessionName: string, execution: Execution, reason: string): Promise<void> {
    this.executions.delete(sessionName);
    execution.abort();
    this.imageWaiters.get(sessionName)?.wake();
    if (execution.runner) {
      execution.runner.terminate();
      await execution.runner.exited;
    }
    await failSession(this.options.ports, { session: sessionName, reason });
    await this.cleanupSession(sessionName);
  }

  private async cleanupSession(sessionName: string): Promise<void> {
    await cleanup({ artifacts: this.options.ports.artifacts, workspaces: { remove: (s) => rm(this.workspaceOf(s), { recursive: true, force: true }) } }, { session: sessionName });
  }

  /**
   * After a restart nothing of the old process runs any more: sessions that were running are
   * failed (their runner is gone or orphaned), sessions still waiting for images start again.
   */
  async recover(killOrphan: (workspace: string) => Promise<void>): Promise<void> {
    for (const session of await this.options.ports.sessions.list()) {
      const { status, job } = session.status.session;
      if (status === 'running') {
        await killOrphan(this.workspaceOf(session.name));
        await failSession(this.options.ports, { session: session.name, reason: 'interrupted by a server restart' });
        await this.cleanupSession(session.name);
      } else if (status === 'pending' && job) {
        const id = await this.start(session.name);
        await this.options.ports.sessions.update(session.name, (s) => ({ ...s, status: { ...s.status, session: { ...s.status.session, job: id } } }));
      }
    }
  }

  /**
   * Stops every execution (server shutdown): running sessions are failed, not left running;
   * sessions still waiting for images stay pending and resume at the next start (recover).
   */
  async close(): Promise<void> {
    for (const [name, execution] of [...this.executions]) {
      const session = await this.options.ports.sessions.get(name);
      if (session?.status.session.status === 'pending') {
        this.executions.delete(name);
        execution.abort();
        this.imageWaiters.get(name)?.wake();
        continue;
      }
      await this.cancel(name, execution, 'interrupted: the server shut down while the session ran');
    }
  }

  /** Resolves when every execution has ended (tests and orderly shutdown). */
  async idle(): Promise<void> {
    while (this.executions.size > 0) await Promise.all([...this.executions.values()].map((e) => e.done));
  }

  private imageRegistered(imageId: string): void {
    for (const waiter of this.imageWaiters.values()) if (waiter.missing.has(imageId)) waiter.wake();
  }

  private handlers(sessionName: string): Record<string, (input: never) => Promise<unknown>> {
    const ports = this.options.ports;
    return {
      ValidateImages: (input: { session: string }) => validateImages(ports, input),
      WaitForImages: (input: { Payload: { session: string; missing: string[]; poll_seconds: number } }) => this.waitForImages(input.Payload),
      StageImage: (input: { session: string; image_id: string }) => stageImage(ports, input),
      RenderInventory: (input: { session: string }) => renderInventoryStep(ports, input),
      RunAnsible: (input: RunTaskParameters) => this.runAnsible(sessionName, input),
      PackageImage: (input: { session: string; image_id: string }) => packageAndUpload(ports, input),
      RecordArtifacts: async (input: { session: string; results: { image_id: string; result_id: string }[] }) => {
        await recordArtifacts(ports, input);
        return {};
      },
      FailSession: async (input: { session: string; error?: { Error?: string; Cause?: string } }) => (await failSession(ports, input)) ?? {},
      Cleanup: async (input: { session: string }) => {
        await this.cleanupSession(input.session);
        return {};
      },
    };
  }

  /** Ends on an Image Registered event for a missing image, or after the poll interval. */
  private waitForImages(payload: { session: string; missing: string[]; poll_seconds: number }): Promise<unknown> {
    return new Promise((resolve) => {
      // A little under the state's TimeoutSecondsPath, so the wait ends here rather than as a timeout.
      const timer = setTimeout(() => wake(), Math.max(100, payload.poll_seconds * 1000 - 50));
      const wake = () => {
        clearTimeout(timer);
        this.imageWaiters.delete(payload.session);
        resolve({});
      };
      this.imageWaiters.set(payload.session, { missing: new Set(payload.missing), wake });
    });
  }

  private async runAnsible(sessionName: string, input: RunTaskParameters): Promise<unknown> {
    const environment = Object.fromEntries(
      (input.Overrides?.ContainerOverrides?.[0]?.Environment ?? []).map((e) => [e.Name, e.Value]),
    );
    const documentKey = environment.RUN_DOCUMENT_KEY;
    if (!documentKey) throw new TaskFailed('RunAnsible: no RUN_DOCUMENT_KEY in the container overrides');
    return this.runs.run(async () => {
      const execution = this.executions.get(sessionName);
      if (!execution) throw new TaskFailed('the session was cancelled before its runner started');
      const runner = (this.options.startRunner ?? startRunnerProcess)({
        session: sessionName,
        documentKey,
        storeDir: this.options.storeDir,
        workspace: this.workspaceOf(sessionName),
        logDir: join(this.options.workDir, 'runner-logs'),
      });
      execution.runner = runner;
      const code = await runner.exited;
      execution.runner = undefined;
      if (code !== 0) throw new TaskFailed(`the runner exited with code ${code}`);
      return { LastStatus: 'STOPPED', Containers: [{ Name: 'runner', ExitCode: 0 }] };
    });
  }
}

interface RunTaskParameters {
  Overrides?: { ContainerOverrides?: { Name?: string; Environment?: { Name: string; Value: string }[] }[] };
}
