import type { ChildProcess } from 'node:child_process';
import { chown, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { redactCloneUrl, redactUrlsInText } from '../core/workflow/redact.ts';
import type { ArtifactStore } from '../ports/artifact-store.ts';
import { LayerCache } from '../core/layer-cache/layer-cache.ts';
import { ansibleEnvironment } from './ansible-environment.ts';
import { CachedLayers, type ChangeCapture } from './cached-layers.ts';
import { debugHoldDetails } from './debug-hold.ts';
import { checkEnvironment } from './environment.ts';
import { oneLine, RUNNER_EXIT_CODES, RunnerFailure, type FailureKind } from './failures.ts';
import { BootTester, checkImage } from './image-tests.ts';
import { ansiblePlaybookArgs, checkCloneUrl, checkPassthrough, cloneLayer, runLayerProcess, writeInventory } from './layers.ts';
import type { LocalStore } from './local-store.ts';
import { packageImage } from './package.ts';
import { processStartTime, ProcessGroups, type ChildExit } from './process-groups.ts';
import { ProgressRecorder } from './progress.ts';
import { layerLogKey } from '../core/workflow/session-keys.ts';
import { type RunDocument, type RunLayer, type RunOutcome } from '../core/workflow/run-document.ts';
import type { GitAccess, SourceSecret } from '../core/sources/source-record.ts';
import {
  prepareRootMounts,
  shareWorkspace,
  startSandboxed,
  undoRootMounts,
  type RootMounts,
  type SandboxMode,
} from './sandbox.ts';
import type { NetworkMode } from './sandbox-network.ts';
import { checkSandboxPrerequisites } from './sandbox-prerequisites.ts';
import type { IdMapping } from './user-namespace.ts';
import { stageImage, type StagedImage } from './stage.ts';
import type { WorkspaceMemory } from './workspace-memory.ts';
import { prepareWorkspace, recordProcesses, removeWorkspace, unmountUnder, type WorkspaceLayout } from './workspace.ts';

/** The login and CA bundle for a source-backed layer's clone; undefined for a plain clone URL. */
async function sourceAccessOf(layer: RunLayer, secrets: RunnerDeps['sourceSecrets']): Promise<GitAccess | undefined> {
  if (!layer.source) return undefined;
  let secret: SourceSecret | undefined;
  try {
    secret = await secrets?.(layer.source.secret_name);
  } catch (error) {
    throw new RunnerFailure('input', `layer '${layer.name}': the credentials of source '${layer.source.name}' (secret '${layer.source.secret_name}') cannot be read: ${(error as Error).message}`, {
      layer: layer.name,
    });
  }
  if (!secret) {
    throw new RunnerFailure('input', `layer '${layer.name}': the credentials of source '${layer.source.name}' (secret '${layer.source.secret_name}') are not available to the runner`, {
      layer: layer.name,
    });
  }
  return { username: secret.username, password: secret.password, ...(layer.source.ca_pem !== undefined ? { caPem: layer.source.ca_pem } : {}) };
}

/** What a run needs from outside: the store, a workspace directory, and a way to be stopped. */
export interface RunnerDeps {
  store: ArtifactStore;
  /** The same store when it is a directory on this machine: sources are read in place, results moved in. */
  local?: LocalStore;
  /** The runner's own directory: created, used and removed by the run (it must be empty or a runner workspace). */
  workspace: string;
  /** Aborting it (main does on SIGTERM) stops the child processes, cleans up and ends the run as terminated. The run document's time budget does the same. */
  signal?: AbortSignal;
  sandbox?: SandboxMode;
  /** The layers' network in namespace mode (default `egress`): the operator's setting, never the session's. */
  network?: NetworkMode;
  /** Progress lines (main sends them to stderr). */
  log?: (line: string) => void;
  /** A budget that may let roots be unpacked into RAM (the engine's, or the task's share); none: on disk. */
  memory?: WorkspaceMemory;
  /** A CFS source's login by its secret name (the engine's pipe, Secrets Manager in AWS); none: source-backed layers fail, as they do when it throws (the reason is kept). */
  sourceSecrets?: (secretName: string) => Promise<SourceSecret | undefined>;
  /** Each layer's output as it is produced, besides its log file. */
  onLayerOutput?: (chunk: Buffer) => void;
  /** How often a running layer's log is copied to the store (default 1 s, so `logs --follow` keeps up). */
  logUploadIntervalMs?: number;
  now?: () => Date;
  /**
   * How the layer cache captures a layer's changes (only with the run document's `layer_cache`):
   * `overlay` by default in namespace mode, `tree` (compare before and after) forced here or by
   * env CFS_CHANGE_CAPTURE=tree (main.ts); container mode always compares trees (it cannot mount).
   */
  changeCapture?: ChangeCapture;
  /** Overrides for tests: what the environment check sees. */
  environment?: { uid?: number; nodeArch?: string; path?: string; binfmtDir?: string; subordinateFiles?: { subuid: string; subgid: string } };
}

/** The run's end: the outcome (also written to the store) and the exit code for it. */
export interface RunResult {
  outcome: RunOutcome;
  exitCode: number;
}

/**
 * The runner's whole job for one session, usable in-process: check the machine, stage and
 * verify every source image, clone every layer at its commit, run each layer's playbook in
 * order in the sandbox (stopping at the first failure), squash and upload every result, and
 * on every path remove the workspace and write the outcome document. With `debug_hold`, a
 * failed layer leaves the workspace in place (mounts undone) and the outcome says how to use it.
 */
export async function runCustomization(document: RunDocument, given: RunnerDeps): Promise<RunResult> {
  const stop = stopSignal(given.signal, document.timeout_seconds);
  const deps = { ...given, signal: stop.signal };
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? (() => {});
  const mode: SandboxMode = deps.sandbox ?? 'namespace';
  const outcome: RunOutcome = {
    session: document.session,
    status: 'failed',
    started: now().toISOString(),
    finished: '',
    images: document.images.map((i) => ({ image_id: i.image_id, result_id: i.result_id, result_name: i.result_name, staged: false, customized: false })),
    layers: document.layers.map((l) => ({
      index: l.index,
      name: l.name,
      exit_code: null,
      duration_ms: 0,
      log_key: layerLogKey(document.logs_prefix, l),
      state: 'skipped' as const,
    })),
  };
  const progress = new ProgressRecorder(document, deps.store, now, log);
  const runner = { pid: process.pid, start: (await processStartTime(process.pid)) ?? '' };
  let workspaceReady = false;
  const groups = new ProcessGroups((live) => (workspaceReady ? recordProcesses(deps.workspace, runner, live) : Promise.resolve()));
  const onAbort = () => void groups.terminateAll();
  deps.signal?.addEventListener('abort', onAbort, { once: true });
  const checkpoint = () => {
    if (deps.signal?.aborted) throw new RunnerFailure('terminated', stoppedBecause(deps.signal, document));
  };

  let exitCode: number = RUNNER_EXIT_CODES.succeeded;
  // An error no step anticipated is put down to the phase it happened in.
  let phase: FailureKind = 'input';
  try {
    checkpoint();
    for (const layer of document.layers) checkCloneUrl(layer, document.allowed_schemes);
    checkPassthrough(document.ansible.passthrough);
    await checkEnvironment(document.images, {
      uid: deps.environment?.uid ?? process.getuid?.() ?? -1,
      nodeArch: deps.environment?.nodeArch ?? process.arch,
      path: deps.environment?.path ?? process.env.PATH ?? '',
      sandboxed: mode === 'namespace',
      binfmtDir: deps.environment?.binfmtDir,
    });
    let mapping: IdMapping | undefined;
    if (mode === 'namespace') {
      const prerequisites = await checkSandboxPrerequisites({
        network: deps.network ?? 'egress',
        path: deps.environment?.path ?? process.env.PATH ?? '',
        ...(deps.environment?.subordinateFiles ? { subordinateFiles: deps.environment.subordinateFiles } : {}),
      });
      if ('problem' in prerequisites) throw new RunnerFailure('environment', prerequisites.problem);
      mapping = prerequisites;
      log(`sandbox: image ids 0-65535 run as host ids ${mapping.uid}-${mapping.uid + 65535} (uid) and ${mapping.gid}-${mapping.gid + 65535} (gid); network ${deps.network ?? 'egress'}`);
    }
    phase = 'environment';
    const layout = await prepareWorkspace(deps.workspace, runner);
    workspaceReady = true;
    if (mapping) await shareWorkspace(layout, mapping);

    const cached = document.layer_cache
      ? new CachedLayers({
          document: { ...document, layer_cache: document.layer_cache },
          outcome,
          layout,
          groups,
          mapping,
          cache: new LayerCache(deps.store),
          store: deps.store,
          ...(deps.local ? { local: deps.local } : {}),
          capture: mode === 'namespace' && deps.changeCapture !== 'tree' ? 'overlay' : 'tree',
          progress,
          log,
          now,
        })
      : undefined;

    phase = 'staging';
    await cached?.prepare();
    const found = await cached?.cachedPrefix();
    const staged: StagedImage[] = [];
    for (const [i, image] of document.images.entries()) {
      checkpoint();
      log(`staging image ${image.image_id} from ${image.rootfs.key}`);
      staged.push(
        await stageImage({
          image,
          layout,
          groups,
          store: deps.store,
          local: deps.local,
          signal: deps.signal,
          log,
          memory: deps.memory,
          ...(mapping ? { mapping } : {}),
          ...cached?.stagingOf(image.image_id),
        }),
      );
      outcome.images[i]!.staged = true;
    }
    // Layers taken from the cache are not cloned nor run.
    const start = cached && found ? await cached.restore(found) : 0;

    phase = 'layer';
    for (const layer of document.layers.slice(start)) {
      checkpoint();
      log(`cloning layer ${layer.index} '${layer.name}' at ${layer.commit}`);
      await cloneLayer(layer, join(layout.repos, String(layer.index)), document.allowed_schemes, groups, await sourceAccessOf(layer, deps.sourceSecrets));
    }

    await runLayers({ document, outcome, staged, layout, groups, deps, mapping, log, checkpoint, progress, start, cached });
    await cached?.mountResult();
    for (const image of outcome.images) image.customized = true;

    // Issue 18: checks in every customized root before anything is packed, a boot of each packed result before it is stored.
    const validation = document.validation;
    const tests = validation
      ? { document, validation, layout, groups, mapping, network: deps.network ?? 'egress', store: deps.store, progress, now, log, signal: deps.signal }
      : undefined;
    if (tests) {
      phase = 'test';
      for (const [i, image] of staged.entries()) {
        checkpoint();
        await checkImage(tests, { image_id: image.image.image_id, root: image.root }, outcome.images[i]!);
      }
    }
    const booter = tests?.validation.boot ? new BootTester(tests, tests.validation.boot) : undefined;
    phase = 'packaging';

    for (const [i, image] of staged.entries()) {
      checkpoint();
      log(`squashing and uploading image ${image.image.image_id} as ${image.image.result_id}`);
      const beforeStoring = booter ? (files: { rootfs: string; kernel?: string; initrd?: string }) => booter.test(image.image.image_id, files, outcome.images[i]!) : undefined;
      const packaged = await packageImage({ staged: image, document, layout, groups, store: deps.store, local: deps.local, log, ...(mapping ? { mapping } : {}), ...(beforeStoring ? { beforeStoring } : {}) });
      outcome.images[i]!.uploaded = packaged.uploaded;
      outcome.images[i]!.compressor = packaged.compressor;
    }
    outcome.status = 'succeeded';
  } catch (error) {
    const failure = classify(error, phase, deps.signal, document);
    exitCode = failure.exitCode;
    outcome.reason = redactUrlsInText(oneLine(failure.message));
    if (failure.context.layer) outcome.failed_layer = failure.context.layer;
    if (failure.context.image) outcome.failed_image = failure.context.image;
    if (failure.kind === 'test') outcome.failed_step = 'test';
    log(`failed: ${outcome.reason}`);
  } finally {
    deps.signal?.removeEventListener('abort', onAbort);
    stop.dispose();
    await groups.terminateAll(5_000);
  }
  await progress.finish();

  // A hold is only for a failed layer: a termination (a cancelled session) always cleans up.
  if (outcome.debug && exitCode !== RUNNER_EXIT_CODES.layer) delete outcome.debug;
  try {
    if (outcome.debug) {
      // The held roots stay where they are: one unpacked into RAM is its tmpfs.
      await unmountUnder(deps.workspace, { keepMemoryRoots: true });
      log(`debug_on_failure: keeping the workspace ${deps.workspace} for inspection`);
    } else {
      await removeWorkspace(deps.workspace);
      log('workspace removed');
    }
  } catch (error) {
    log(`could not ${outcome.debug ? 'unmount under' : 'remove'} the workspace ${deps.workspace}: ${(error as Error).message}`);
  }
  outcome.finished = now().toISOString();
  try {
    await deps.store.put(document.outcome_key, JSON.stringify(outcome, null, 2), { contentType: 'application/json' });
  } catch (error) {
    log(`could not write the outcome to ${document.outcome_key}: ${(error as Error).message}`);
    if (exitCode === RUNNER_EXIT_CODES.succeeded) exitCode = RUNNER_EXIT_CODES.packaging;
  }
  return { outcome, exitCode };
}

/** What running the layers needs: the run so far, its workspace and processes, and how it reports and stops. */
interface LayerRunContext {
  document: RunDocument;
  /** Updated in place: each layer's exit code, duration and state. */
  outcome: RunOutcome;
  staged: StagedImage[];
  layout: WorkspaceLayout;
  groups: ProcessGroups;
  deps: RunnerDeps;
  /** The image ids' mapping onto root's subordinate range; undefined in container mode (no namespaces). */
  mapping: IdMapping | undefined;
  log: (line: string) => void;
  /** Throws once the run was told to stop. */
  checkpoint: () => void;
  progress: ProgressRecorder;
  /** The position of the first layer to run (the ones before it came from the layer cache). */
  start: number;
  /** The layer cache's side of the run, when the run document has `layer_cache`. */
  cached: CachedLayers | undefined;
}

/** Runs every layer in order in the sandbox; the first failure stops the run (later layers stay skipped). */
async function runLayers(context: LayerRunContext): Promise<void> {
  const { document, outcome, staged, layout, groups, deps, mapping, log, checkpoint, progress, start, cached } = context;
  // A directory of its own, bound read-only into the sandbox with what ansiblePlaybookArgs names beside the inventory.
  const inventoryDir = join(layout.root, 'inventory');
  await mkdir(inventoryDir, { mode: 0o755 });
  const inventory = join(inventoryDir, 'inventory.yaml');
  await writeInventory(inventory, document, new Map(staged.map((s) => [s.image.image_id, s.root])));
  if (mapping) for (const name of await readdir(inventoryDir)) await chown(join(inventoryDir, name), mapping.uid, mapping.gid);
  let rootMounts: RootMounts[] = [];
  // Held for debugging: the mount points stay for `cfs sessions debug`, which builds its sandbox from the run document.
  let keepMountPoints = false;
  const undo = async () => {
    for (const mounts of rootMounts) await undoRootMounts(mounts).catch(() => {});
    rootMounts = [];
  };
  try {
    const limit = document.ansible.limit || document.images.map((i) => i.image_id).join(',');
    for (const [position, layer] of document.layers.entries()) {
      if (position < start) continue;
      checkpoint();
      const record = outcome.layers[position]!;
      const repo = join(layout.repos, String(layer.index));
      const args = ansiblePlaybookArgs({ inventory, limit, verbosity: document.ansible.verbosity, passthrough: document.ansible.passthrough, playbook: layer.playbook });
      log(`running layer ${layer.index} '${layer.name}': ansible-playbook ${layer.playbook}`);
      await progress.started(position);
      // The overlays (or the trees' snapshots) first: the mount points below are made in the layer's root.
      await cached?.beforeLayer(layer);
      // Checked again before every layer: the one before may have changed the roots.
      if (mapping) for (const image of staged) rootMounts.push(await prepareRootMounts(image.root, true));
      const launch = launcher({ mapping, network: deps.network ?? 'egress', layout, rootMounts, inventory, repo, args, groups,
        env: ansibleEnvironment(layout, join(repo, 'roles'), process.env),
      });
      const run = await runLayerProcess({
        launch,
        logPath: join(layout.logs, `${layer.index}.log`),
        logKey: record.log_key,
        header: `# CFS session ${document.session}, layer ${layer.index} '${layer.name}': ${redactCloneUrl(layer.clone_url)} ${layer.commit} ${layer.playbook}\n`,
        store: deps.store,
        uploadEveryMs: deps.logUploadIntervalMs ?? 1_000,
        onOutput: deps.onLayerOutput,
        now: () => now(deps),
      });
      record.exit_code = run.exitCode;
      record.duration_ms = run.durationMs;
      record.state = run.exitCode === 0 ? 'succeeded' : 'failed';
      await progress.ended(position, record.state);
      if (run.exitCode === 0) {
        await undo();
        await cached?.afterLayer(layer, position);
        continue;
      }
      if (deps.signal?.aborted) {
        throw new RunnerFailure('terminated', `${stoppedBecause(deps.signal, document)} during layer ${layer.index} '${layer.name}'`, { layer: layer.name });
      }
      // Only a runner beside its engine can keep a workspace someone can enter later: an ECS
      // task's storage ends with the task, so there a hold would point at nothing.
      if (document.debug_hold && !deps.local) log('debug_on_failure: the workspace cannot be kept: it ends with this task (the layer logs remain)');
      if (document.debug_hold && deps.local) {
        outcome.debug = debugHoldDetails({ document, layout, inventory, roots: staged.map((s) => ({ image_id: s.image.image_id, root: s.root })) });
        keepMountPoints = true;
      }
      const how = run.signal ? `was killed by ${run.signal}` : `exited with ${run.exitCode}`;
      const hosts = run.failedHosts.length > 0 ? ` (failed hosts: ${run.failedHosts.join(', ')})` : '';
      throw new RunnerFailure('layer', `layer ${layer.index} '${layer.name}' failed: ansible-playbook ${how}${hosts}; log at ${record.log_key}`, {
        layer: layer.name,
        ...(run.failedHosts[0] ? { image: run.failedHosts[0] } : {}),
      });
    }
  } finally {
    // The last layers' change sets may still be being recorded in the background: the run waits for them.
    await cached?.settle();
    if (!keepMountPoints) await undo();
  }
}

/**
 * How one layer's ansible-playbook starts: in the sandbox (namespace mode), or directly with the
 * container as the boundary.
 */
function launcher(options: {
  mapping: IdMapping | undefined;
  network: NetworkMode;
  layout: WorkspaceLayout;
  rootMounts: RootMounts[];
  inventory: string;
  repo: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  groups: ProcessGroups;
}): (attach: (child: ChildProcess) => void) => Promise<{ exited: Promise<ChildExit> }> {
  const { mapping, groups } = options;
  if (!mapping) {
    return async (attach) => {
      const started = groups.start('ansible-playbook', options.args, { cwd: options.repo, env: options.env });
      attach(started.child);
      return started;
    };
  }
  return (attach) =>
    startSandboxed({
      layout: options.layout,
      mapping,
      network: options.network,
      roots: options.rootMounts,
      inventory: options.inventory,
      cwd: options.repo,
      command: 'ansible-playbook',
      args: options.args,
      env: options.env,
      groups,
      attach,
    });
}

function now(deps: RunnerDeps): number {
  return (deps.now ?? (() => new Date()))().getTime();
}

const BUDGET_RAN_OUT = 'time budget ran out';

/**
 * The caller's signal, and the run document's time budget when it has one: either stops the
 * run. A plain timer (cleared by `dispose`) rather than AbortSignal.timeout, whose signal Node
 * may collect before it fires when only a composite signal refers to it.
 */
function stopSignal(signal: AbortSignal | undefined, timeoutSeconds: number | undefined): { signal: AbortSignal | undefined; dispose: () => void } {
  if (timeoutSeconds === undefined) return { signal, dispose: () => {} };
  const controller = new AbortController();
  const forward = () => controller.abort(signal?.reason);
  if (signal?.aborted) forward();
  else signal?.addEventListener('abort', forward, { once: true });
  const timer = setTimeout(() => controller.abort(BUDGET_RAN_OUT), timeoutSeconds * 1000);
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', forward);
    },
  };
}

/** Why a stopped run stopped: its time budget ran out, or it was told to (SIGTERM). */
function stoppedBecause(signal: AbortSignal, document: RunDocument): string {
  const reason: unknown = signal.reason;
  if (reason === BUDGET_RAN_OUT) return `timed out: the runner's time budget of ${document.timeout_seconds}s ran out`;
  return 'terminated by SIGTERM';
}

/** Any error as a RunnerFailure; once the run was told to stop, every failure is the termination. */
function classify(error: unknown, phase: FailureKind, signal: AbortSignal | undefined, document: RunDocument): RunnerFailure {
  if (error instanceof RunnerFailure && error.kind === 'terminated') return error;
  if (signal?.aborted) return new RunnerFailure('terminated', stoppedBecause(signal, document), error instanceof RunnerFailure ? error.context : {});
  if (error instanceof RunnerFailure) return error;
  return new RunnerFailure(phase, `${phase} failed: ${(error as Error)?.message ?? String(error)}`);
}
