import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import { SessionCancelledError } from '../../core/errors.ts';
import type { SessionRecord } from '../../core/model/session.ts';
import { isHeld } from '../../core/sessions/debug-hold.ts';
import { sessionsWhereAny } from '../../core/sessions/sessions-where.ts';
import type { ProductEvent } from '../../ports/event-publisher.ts';
import type { WorkflowStarter } from '../../ports/workflow-starter.ts';
import { killOrphanedRun, removeTree, removeWorkspace } from '../../runner/workspace.ts';
import { cleanup } from '../../steps/cleanup.ts';
import { failSession, removeSessionResults } from '../../steps/fail-session.ts';
import { syncLayerProgress } from '../../steps/layer-progress.ts';
import { packageAndUpload } from '../../steps/package-and-upload.ts';
import { recordArtifacts } from '../../steps/record-artifacts.ts';
import { renderInventoryStep } from '../../steps/render-inventory.ts';
import { stageImage } from '../../steps/stage-image.ts';
import { DEFAULT_WORKFLOW_SETTINGS, type StepPorts } from '../../steps/step-ports.ts';
import { validateImages } from '../../steps/validate-images.ts';
import { anyImageReady } from '../../steps/wait-for-images.ts';
import { localDefinition } from './asl-definition.ts';
import { ConcurrencyGate } from './concurrency-gate.ts';
import { DebugHolds } from './debug-holds.ts';
import { startRunnerProcess, type RunnerProcess } from './process-runner.ts';
import type { SourceSecret } from '../../core/sources/source-record.ts';
import { readRunDocument } from '../../core/workflow/run-document-store.ts';
import type { SourceSecretStore } from '../../ports/source-store.ts';
import type { WorkspaceMemoryBudget } from './workspace-memory-budget.ts';

/** Subscribes to the in-process bus (only `Image Registered` is needed here). */
export interface LocalEventSource {
  subscribe(detailType: ProductEvent['detailType'], handler: (event: ProductEvent) => void | Promise<void>): unknown;
}

export interface LocalEngineOptions {
  ports: StepPorts;
  /** The directory of the filesystem artifact store (the runner reads and writes it directly). */
  storeDir?: string;
  /** Instead of `storeDir`: the environment that names an S3 store to the runner (ARTIFACT_BUCKET...; runner/settings.ts). */
  storeEnvironment?: Record<string, string>;
  /** Runner workspaces and runner logs live below this directory. */
  workDir: string;
  /** How many runners (RunAnsible tasks) may run at once; waiting sessions take no slot, nor do held ones (their runner has exited). */
  maxConcurrentRuns: number;
  events: LocalEventSource;
  /** Hooks tests use to produce faults the real parts cannot (a runner that never starts, say). */
  startRunner?: typeof startRunnerProcess;
  /** The RAM runners may unpack roots into, shared by all of them (`cfs server --workspace-memory`); none: always on disk. */
  workspaceMemory?: WorkspaceMemoryBudget;
  /** Where CFS sources' logins are kept: the engine hands a session's to its runner alone. */
  sourceSecrets?: Pick<SourceSecretStore, 'get'>;
  /** How often a running runner's layer progress is copied into the session's status (default 500 ms). */
  progressPollMs?: number;
  /** Where background failures are reported (default console.error). */
  log?: (line: string) => void;
}

interface Execution {
  id: string;
  abort: () => void;
  /** Set when the execution is stopped: no further step starts, no runner is started. */
  stopped: boolean;
  runner?: RunnerProcess;
  done: Promise<void>;
  /** Step handlers still running: an aborted state machine does not wait for them, the clean-up does. */
  inflight: Set<Promise<unknown>>;
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
 *
 * It owns the background work of its sessions: the clean-up of a stopped execution (which
 * `stop` starts and does not wait for, so a DELETE is answered at once) and the debug holds of
 * failed sessions (`debug_on_failure`); `idle()` and `close()` wait for that work.
 */
export class LocalWorkflowEngine implements WorkflowStarter {
  private readonly machine = new StateMachine(localDefinition() as never, { validationOptions: { checkPaths: true, checkArn: true } });
  private readonly executions = new Map<string, Execution>();
  private readonly imageWaiters = new Map<string, { missing: Set<string>; wake: () => void }>();
  private readonly runs: ConcurrencyGate;
  /** Background work (clean-ups of stopped executions, hold releases) and the session each is for. */
  private readonly background = new Map<Promise<void>, string>();
  private readonly holds: DebugHolds;
  private readonly log: (line: string) => void;
  /** Set by close(): the engine takes no more sessions (health reports it). */
  private closed = false;

  constructor(private readonly options: LocalEngineOptions) {
    if ((options.storeDir === undefined) === (options.storeEnvironment === undefined)) throw new Error('the engine takes one artifact store: storeDir or storeEnvironment');
    this.runs = new ConcurrencyGate(Math.max(1, options.maxConcurrentRuns));
    this.log = options.log ?? ((line) => console.error(line));
    this.holds = new DebugHolds({
      sessions: options.ports.sessions,
      clock: options.ports.clock,
      removeWorkspace: (session) => this.removeWorkspaceOf(session),
      artifacts: options.ports.artifacts,
      track: (session, work) => void this.track(session, work),
      settings: options.ports.settings,
      events: options.ports.events,
      log: this.log,
    });
    options.events.subscribe('Image Registered', (event) => this.imageRegistered(String(event.detail.id ?? '')));
  }

  /** A session's runner workspace: `<workDir>/workspaces/<session>`. */
  workspaceOf(session: string): string {
    return join(this.options.workDir, 'workspaces', session);
  }

  /** Sessions this engine is working for now (running, or being cleaned up): their workspaces are not orphans. */
  busySessions(): Set<string> {
    return new Set([...this.executions.keys(), ...this.background.values()]);
  }

  /**
   * Health: the engine would take a session now. It is not closed, and its work directory takes
   * a workspace (a probe directory, a name no session can have, made and removed where
   * workspaces go: a full, read-only or vanished disk fails here, not in a session's first step).
   */
  async checkHealth(): Promise<void> {
    if (this.closed) throw new Error('the engine is shut down');
    const probe = join(this.options.workDir, 'workspaces', `.healthz-${randomUUID()}`);
    await mkdir(probe, { recursive: true });
    await rm(probe, { recursive: true, force: true });
  }

  /**
   * Unmounts and removes a workspace (never crossing into another filesystem, following a
   * symlink or stopping at what a layer made immutable), with its process record. The engine
   * made the directory, so one whose marker a layer deleted is removed all the same.
   */
  private async removeWorkspaceOf(session: string): Promise<void> {
    const dir = this.workspaceOf(session);
    if (!(await removeWorkspace(dir))) await removeTree(dir);
    this.options.workspaceMemory?.releaseAll(session);
  }

  /** Runs background work to its end, reporting (never throwing) its failure, and remembers it until then. */
  private track(session: string, work: Promise<void>): Promise<void> {
    const settled = work.catch((error: unknown) => this.log(`background work for session ${session} failed: ${(error as Error)?.stack ?? String(error)}`));
    this.background.set(settled, session);
    void settled.finally(() => this.background.delete(settled));
    return settled;
  }

  /** Execution ids are made here, so the one planned is the one `start` uses. */
  plannedJob(session: SessionRecord): string {
    return newExecutionId(session.name);
  }

  async start(sessionName: string, plannedJob?: string): Promise<string> {
    const running = this.executions.get(sessionName);
    if (running) return running.id;
    const id = plannedJob ?? newExecutionId(sessionName);
    const entry: Execution = { id, abort: () => {}, stopped: false, done: Promise.resolve(), inflight: new Set() };
    const execution = this.machine.run({ session: sessionName }, {
      noThrowOnAbort: true,
      context: { Execution: { Id: id, Input: { session: sessionName }, StartTime: new Date().toISOString() }, Task: { Token: `local:${sessionName}` } },
      overrides: { taskResourceLocalHandlers: this.handlers(sessionName, entry) as never },
    });
    Object.assign(entry, {
      abort: execution.abort,
      done: execution.result.then(
        () => undefined,
        // The state machine's own failure path already recorded the session's failure.
        () => undefined,
      ).finally(() => {
        if (this.executions.get(sessionName) === entry) this.executions.delete(sessionName);
      }),
    });
    this.executions.set(sessionName, entry);
    return id;
  }

  /**
   * Stops an execution and returns at once (as StopExecution does): the runner is told to
   * stop now, and the clean-up (runner exit, failure record, uploads, workspace) finishes in
   * the background, where `idle()` and `close()` wait for it.
   */
  async stop(sessionName: string, executionId: string): Promise<void> {
    const execution = this.executions.get(sessionName);
    if (!execution || execution.id !== executionId) return;
    // The plan as it is now: the caller may delete the record before the clean-up needs it.
    const snapshot = await this.options.ports.sessions.get(sessionName);
    if (this.executions.get(sessionName) !== execution) return;
    void this.cancel(sessionName, execution, 'the session was deleted while it ran', snapshot);
  }

  /** Ends a failed session's debug hold now: its workspace is removed and the release recorded. */
  async releaseHold(sessionName: string): Promise<void> {
    await this.track(sessionName, this.holds.release(sessionName));
  }

  /**
   * Aborting skips the state machine's Catch (as StopExecution does in AWS), so the clean-up of
   * the failure path runs here: stop the runner (SIGTERM; its process group is killed when it
   * has not stopped within the grace period), wait for every step still running, record the
   * failure, remove result images and uploads, and remove the workspace. The stopping is
   * synchronous; the clean-up is tracked background work.
   */
  private cancel(sessionName: string, execution: Execution, reason: string, snapshot?: SessionRecord): Promise<void> {
    this.executions.delete(sessionName);
    execution.stopped = true;
    execution.abort();
    this.imageWaiters.get(sessionName)?.wake();
    const runner = execution.runner;
    runner?.terminate();
    const ports = this.options.ports;
    return this.track(
      sessionName,
      (async () => {
        const killedAfter = runner ? await this.awaitRunnerStop(sessionName, runner) : undefined;
        while (execution.inflight.size > 0) await Promise.allSettled([...execution.inflight]);
        const why = killedAfter === undefined ? reason : `${reason}; its runner did not stop within ${killedAfter}s of SIGTERM and was killed (SIGKILL)`;
        await failSession(ports, { session: sessionName, reason: why });
        // A record deleted meanwhile no longer names its results: the snapshot does.
        const session = (await ports.sessions.get(sessionName)) ?? snapshot;
        if (session) await removeSessionResults(ports, session);
        // With its execution id: a deleted session's clean-up removes its documents and logs.
        await this.cleanupSession(sessionName, execution.id);
      })(),
    );
  }

  /**
   * Waits for a runner that was sent SIGTERM. Past the grace period (`runnerStopGraceSeconds`)
   * its process group is killed, and then the process groups it recorded for its children
   * (Ansible, unsquashfs, the sandbox), which the orphan sweep of a restart also kills, with the
   * workspace. Resolves with the grace in seconds when it had to kill, else undefined.
   */
  private async awaitRunnerStop(sessionName: string, runner: RunnerProcess): Promise<number | undefined> {
    const settings = await this.options.ports.settings().catch(() => DEFAULT_WORKFLOW_SETTINGS);
    const graceSeconds = settings.runnerStopGraceSeconds ?? DEFAULT_WORKFLOW_SETTINGS.runnerStopGraceSeconds!;
    if (await settlesWithin(runner.exited, graceSeconds * 1000)) return undefined;
    this.log(`session ${sessionName}: the runner (pid ${runner.pid}) did not stop within ${graceSeconds}s of SIGTERM; killing its process group`);
    runner.kill();
    await killOrphanedRun(this.workspaceOf(sessionName));
    // Its output closes once nothing of it holds the pipe; a process outside every recorded group could still, so this wait has a bound too.
    if (!(await settlesWithin(runner.exited, RUNNER_EXIT_AFTER_KILL_MS))) this.log(`session ${sessionName}: the runner's output was still open ${RUNNER_EXIT_AFTER_KILL_MS} ms after SIGKILL`);
    return graceSeconds;
  }

  /** The Cleanup step's work here: the run document, and the workspace unless a debug hold keeps it (all of a deleted session's objects, given its `job`). */
  private async cleanupSession(sessionName: string, job?: string): Promise<void> {
    await cleanup(
      { artifacts: this.options.ports.artifacts, sessions: this.options.ports.sessions, workspaces: { remove: (s) => this.removeWorkspaceOf(s) } },
      { session: sessionName, ...(job ? { job } : {}) },
    );
  }

  /**
   * After a restart nothing of the old process runs any more: sessions that were running are
   * failed (their runner is gone or orphaned), sessions still waiting for images start again,
   * and debug holds are re-armed (or ended, when they expired while the server was down).
   */
  async recover(killOrphan: (workspace: string) => Promise<void>): Promise<void> {
    // Only these can need anything; a hold is kept by a failed session, `running` while it holds
    // (one recorded `complete` by an earlier version is still re-armed) (the status index serves
    // running and pending; failed ones are filtered out of the completed ones).
    const sessions = await sessionsWhereAny(this.options.ports.sessions, [{ status: 'running' }, { status: 'pending' }, { status: 'complete', succeeded: 'false' }]);
    for (const session of sessions) {
      // Created through the API since this process started listening: this engine runs it already.
      if (this.executions.has(session.name)) continue;
      const { status, job } = session.status.session;
      // A held session is `running` (or, recorded before holds kept it so, `complete`): its runner ended already.
      if (isHeld(session)) {
        this.holds.arm(session);
      } else if (status === 'running') {
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
   * Waits for all background work; debug holds stay recorded and are re-armed by recover.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.holds.close();
    for (const [name, execution] of [...this.executions]) {
      const session = await this.options.ports.sessions.get(name);
      if (session?.status.session.status === 'pending') {
        this.executions.delete(name);
        execution.stopped = true;
        execution.abort();
        this.imageWaiters.get(name)?.wake();
        continue;
      }
      await this.cancel(name, execution, 'interrupted: the server shut down while the session ran');
    }
    await this.settleBackground();
  }

  /** Resolves when every execution and all background work (clean-ups, hold releases) have ended (tests and orderly shutdown). */
  async idle(): Promise<void> {
    while (this.executions.size > 0 || this.background.size > 0) {
      await Promise.all([...this.executions.values()].map((e) => e.done));
      await this.settleBackground();
    }
  }

  /** Whether a debug hold timer is armed for the session (tests). */
  holdArmed(sessionName: string): boolean {
    return this.holds.armed(sessionName);
  }

  private async settleBackground(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background.keys()]);
  }

  private imageRegistered(imageId: string): void {
    for (const waiter of this.imageWaiters.values()) if (waiter.missing.has(imageId)) waiter.wake();
  }

  private handlers(sessionName: string, execution: Execution): Record<string, (input: never) => Promise<unknown>> {
    const handlers = this.stepHandlers(sessionName, execution);
    // Every step is tracked, and none starts once the execution is stopped.
    return Object.fromEntries(
      Object.entries(handlers).map(([state, handler]) => [
        state,
        (input: never) => {
          if (execution.stopped) return Promise.reject(new SessionCancelledError(`session '${sessionName}' was stopped`));
          const running = handler(input);
          execution.inflight.add(running);
          void running.then(
            () => execution.inflight.delete(running),
            () => execution.inflight.delete(running),
          );
          return running;
        },
      ]),
    );
  }

  private stepHandlers(sessionName: string, execution: Execution): Record<string, (input: never) => Promise<unknown>> {
    const ports = this.options.ports;
    return {
      ValidateImages: (input: { session: string }) => validateImages(ports, input),
      WaitForImages: (input: { Payload: { session: string; missing: string[]; poll_seconds: number } }) => this.waitForImages(input.Payload),
      StageImage: (input: { session: string; image_id: string }) => stageImage(ports, input),
      RenderInventory: (input: { session: string }) => renderInventoryStep(ports, input),
      RunAnsible: (input: RunTaskParameters) => this.runAnsible(sessionName, execution, input),
      PackageImage: (input: { session: string; image_id: string }) => packageAndUpload(ports, input),
      RecordArtifacts: async (input: { session: string; results: { image_id: string; result_id: string }[] }) => {
        await recordArtifacts(ports, input);
        return {};
      },
      FailSession: async (input: { session: string; error?: { Error?: string; Cause?: string } }) => (await failSession(ports, input)) ?? {},
      Cleanup: async (input: { session: string }) => {
        await this.cleanupSession(input.session);
        // A failed session with debug_on_failure keeps its workspace until its hold ends.
        const session = await ports.sessions.get(input.session);
        if (session && isHeld(session)) this.holds.arm(session);
        return {};
      },
    };
  }

  /**
   * Ends on an Image Registered event for a missing image, or after the poll interval. Once it
   * listens it looks once more, as the AWS step does once its token is stored: an image
   * registered after ValidateImages looked announced itself before anyone listened.
   */
  private waitForImages(payload: { session: string; missing: string[]; poll_seconds: number }): Promise<unknown> {
    return new Promise((resolve) => {
      let ended = false;
      // A little under the state's TimeoutSecondsPath, so the wait ends here rather than as a timeout.
      const timer = setTimeout(() => wake(), Math.max(100, payload.poll_seconds * 1000 - 50));
      const wake = () => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        // A late wake (the look below) must not remove the session's next wait.
        if (this.imageWaiters.get(payload.session) === waiter) this.imageWaiters.delete(payload.session);
        resolve({});
      };
      const waiter = { missing: new Set(payload.missing), wake };
      this.imageWaiters.set(payload.session, waiter);
      anyImageReady(this.options.ports, payload.missing).then(
        (ready) => {
          if (ready) wake();
        },
        // The poll interval still ends the wait.
        (error: unknown) => this.log(`image wait of ${payload.session}: ${(error as Error).message}`),
      );
    });
  }

  private async runAnsible(sessionName: string, execution: Execution, input: RunTaskParameters): Promise<unknown> {
    const environment = Object.fromEntries(
      (input.Overrides?.ContainerOverrides?.[0]?.Environment ?? []).map((e) => [e.Name, e.Value]),
    );
    const documentKey = environment.RUN_DOCUMENT_KEY;
    if (!documentKey) throw new TaskFailed('RunAnsible: no RUN_DOCUMENT_KEY in the container overrides');
    return this.runs.run(async () => {
      if (execution.stopped) throw new TaskFailed('the session was cancelled before its runner started');
      const budget = this.options.workspaceMemory;
      const runner = (this.options.startRunner ?? startRunnerProcess)({
        session: sessionName,
        documentKey,
        ...(this.options.storeDir !== undefined ? { storeDir: this.options.storeDir } : { storeEnvironment: this.options.storeEnvironment }),
        workspace: this.workspaceOf(sessionName),
        logDir: join(this.options.workDir, 'runner-logs'),
        ...(budget ? { memory: { reserve: (bytes) => budget.reserve(sessionName, bytes), release: (bytes) => budget.release(sessionName, bytes) } } : {}),
        ...(await this.sourceSecretsOf(sessionName)),
      });
      execution.runner = runner;
      const code = await this.followProgress(sessionName, runner);
      execution.runner = undefined;
      // The runner removed its workspace (and its tmpfs roots) unless a debug hold keeps them: the hold's end gives the grant back.
      if (budget && !existsSync(this.workspaceOf(sessionName))) budget.releaseAll(sessionName);
      if (code !== 0) throw new TaskFailed(`the runner exited with code ${code}`);
      return { LastStatus: 'STOPPED', Containers: [{ Name: 'runner', ExitCode: 0 }] };
    });
  }

  /**
   * The logins of the secrets the session's run document names, for its runner only (a pipe,
   * process-runner.ts); none when its layers name no source. A missing secret is left out: the
   * runner then fails that layer saying whose credentials it lacks.
   */
  private async sourceSecretsOf(sessionName: string): Promise<{ sourceSecrets?: Record<string, SourceSecret> }> {
    const store = this.options.sourceSecrets;
    const document = await readRunDocument(this.options.ports.artifacts, sessionName);
    const names = [...new Set((document?.layers ?? []).flatMap((layer) => (layer.source ? [layer.source.secret_name] : [])))];
    if (!store || names.length === 0) return {};
    const secrets: Record<string, SourceSecret> = {};
    for (const name of names) {
      const secret = await store.get(name);
      if (secret) secrets[name] = secret;
    }
    return { sourceSecrets: secrets };
  }

  /**
   * Waits for the runner's exit while copying its layer progress into the session's status
   * (which layer runs, since when), and once more at the end.
   */
  private async followProgress(sessionName: string, runner: RunnerProcess): Promise<number> {
    const sync = serialized(() => syncLayerProgress(this.options.ports, sessionName).catch((error: unknown) => this.log(`layer progress of ${sessionName}: ${(error as Error).message}`)));
    const timer = setInterval(() => void sync(), this.options.progressPollMs ?? 500);
    try {
      return await runner.exited;
    } finally {
      clearInterval(timer);
      // A tick still running may have read the document before the runner's last write.
      await sync();
      await sync();
    }
  }
}

/** How long the engine waits for a killed runner's exit to be seen before it goes on with the clean-up. */
const RUNNER_EXIT_AFTER_KILL_MS = 5_000;

/** Whether `promise` settles within `ms` (the timer is cleared either way). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function newExecutionId(sessionName: string): string {
  return `local:${sessionName}:${randomUUID()}`;
}

/** One sync at a time per session: a slow store skips ticks instead of piling them up. */
function serialized(work: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= work().finally(() => {
      running = undefined;
    });
    return running;
  };
}

interface RunTaskParameters {
  Overrides?: { ContainerOverrides?: { Name?: string; Environment?: { Name: string; Value: string }[] }[] };
}
