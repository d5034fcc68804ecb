import { serve, type ServerType } from '@hono/node-server';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { DynamoDbAutomationStore } from '../adapters/dynamodb/dynamodb-automation-store.ts';
import { DynamoDbConfigurationStore } from '../adapters/dynamodb/dynamodb-configuration-store.ts';
import { DynamoDbImageRegistry } from '../adapters/dynamodb/dynamodb-image-registry.ts';
import { DynamoDbOptionsStore } from '../adapters/dynamodb/dynamodb-options-store.ts';
import { DynamoDbSessionStore } from '../adapters/dynamodb/dynamodb-session-store.ts';
import { DEFAULT_TABLE_NAME } from '../adapters/dynamodb/table-schema.ts';
import { AutomationScheduler } from '../adapters/local/automation-scheduler.ts';
import { startLocalDynamo } from '../adapters/local/dynalite.ts';
import { GitCliResolver } from '../adapters/local/git-cli-resolver.ts';
import { FsArtifactStore, loadOrCreateSigningSecret } from '../adapters/local/fs-artifact-store.ts';
import { InProcessEventBus } from '../adapters/local/in-process-event-bus.ts';
import { LocalWorkflowEngine } from '../adapters/local/local-workflow-engine.ts';
import { RetentionSweeper } from '../adapters/local/retention-sweeper.ts';
import { handleImageRegistered, runAutomations, type TriggerPorts } from '../core/automations/trigger.ts';
import { optionDefaultsFrom, settingsReader } from '../core/options/workflow-settings.ts';
import { DEFAULT_MAX_CONCURRENT_RUNS } from './defaults.ts';
import { RUNNER_VERSION } from '../runner/runner-version.ts';
import { killOrphanedRun } from '../runner/workspace.ts';
import { settlePendingResults } from '../steps/fail-session.ts';
import { DEFAULT_WORKFLOW_SETTINGS, type WorkflowSettings } from '../steps/step-ports.ts';
import { createApp } from '../api/app.ts';
import { API_TOKEN_ENV, isLoopbackHost } from '../api/auth.ts';
import { ARTIFACT_ROUTE_PREFIX } from '../api/routes/artifacts.ts';
import { systemClock } from '../ports/clock.ts';
import type { AppPorts } from '../ports/index.ts';

export interface EmbeddedOptions {
  /** Everything the server writes lives below this directory. */
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  /** Default 127.0.0.1; any other than loopback requires `apiToken`. */
  host?: string;
  /** Every request but signed artifact URLs must carry `Authorization: Bearer <apiToken>` (CFS_API_TOKEN). */
  apiToken?: string;
  /** Clone URL schemes git may use (default https, ssh, file). */
  cloneUrlSchemes?: string[];
  /** Replaces ports (tests inject fakes, e.g. a workflow starter, until every adapter lands). */
  overrides?: Partial<AppPorts>;
  /** Workflow settings (image wait timeout, poll interval, squashfs, ...); defaults otherwise. */
  workflow?: Partial<WorkflowSettings>;
  /** How many sessions may run Ansible at once (default DEFAULT_MAX_CONCURRENT_RUNS). */
  maxConcurrentRuns?: number;
  /** How often retention sweeps (expired sessions, orphaned workspaces); default 5 minutes, and once at start. */
  retentionSweepMs?: number;
}

export interface EmbeddedRuntime {
  url: string;
  ports: AppPorts;
  /** The in-process event bus behind `ports.events`: the engine and triggers subscribe here. */
  bus: InProcessEventBus;
  /** The embedded workflow engine behind `ports.workflow`. */
  engine: LocalWorkflowEngine;
  /** Automation schedules (croner): what EventBridge Scheduler does in AWS. */
  scheduler: AutomationScheduler;
  /** The trigger's ports: what the `Image Registered` subscription and the schedules run with. */
  trigger: TriggerPorts;
  /** Retention: removes expired sessions and their logs, and workspaces no live session owns. */
  sweeper: RetentionSweeper;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * The embedded composition root: the whole product on one machine. dynalite persisted in the
 * data directory, the API on 127.0.0.1.
 */
export async function startEmbeddedRuntime(options: EmbeddedOptions): Promise<EmbeddedRuntime> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const dynamo = await startLocalDynamo({ path: resolve(dataDir, 'db'), tableName: DEFAULT_TABLE_NAME });

  // Image bytes under the data directory; the signing secret is kept there so URLs outlive a restart.
  const artifacts = new FsArtifactStore(resolve(dataDir, 'artifacts'), {
    secret: await loadOrCreateSigningSecret(resolve(dataDir, 'artifact-url-secret')),
  });
  const bus = new InProcessEventBus();

  // No other process can open this database (leveldb locks it): records written here are served from memory.
  const tableUse = { soleWriter: true };
  const sessions = new DynamoDbSessionStore(dynamo.documents, DEFAULT_TABLE_NAME, tableUse);
  const images = new DynamoDbImageRegistry(dynamo.documents, DEFAULT_TABLE_NAME, tableUse);
  const git = new GitCliResolver({ allowedSchemes: options.cloneUrlSchemes });
  const settings: WorkflowSettings = {
    ...DEFAULT_WORKFLOW_SETTINGS,
    allowedCloneSchemes: [...git.allowedSchemes],
    ...options.workflow,
  };
  // The settings above are the options' defaults; options PATCHed through the API win at run time.
  const optionsStore = new DynamoDbOptionsStore(dynamo.documents, DEFAULT_TABLE_NAME, optionDefaultsFrom(settings), tableUse);
  const readSettings = settingsReader(optionsStore, settings);
  const engine = new LocalWorkflowEngine({
    ports: { sessions, images, artifacts, events: bus, clock: systemClock, settings: readSettings },
    storeDir: artifacts.root,
    workDir: resolve(dataDir, 'work'),
    maxConcurrentRuns: options.maxConcurrentRuns ?? DEFAULT_MAX_CONCURRENT_RUNS,
    events: bus,
  });

  const automations = new DynamoDbAutomationStore(dynamo.documents, DEFAULT_TABLE_NAME, tableUse);
  // The trigger's ports are known once `ports` is built; a tick cannot come before start() arms it.
  const scheduler = new AutomationScheduler({ run: (names) => runAutomations(trigger, names, 'schedule') });

  const ports: AppPorts = {
    sessions,
    configurations: new DynamoDbConfigurationStore(dynamo.documents, DEFAULT_TABLE_NAME, tableUse),
    images,
    artifacts,
    workflow: engine,
    events: bus,
    git,
    clock: systemClock,
    options: optionsStore,
    automations,
    automationSchedules: scheduler,
    ...options.overrides,
  };
  const trigger: TriggerPorts = { ...ports, automations: ports.automations ?? automations, runnerVersion: RUNNER_VERSION };
  // Automations that build on new images (the engine's own subscription wakes waiting sessions).
  bus.subscribe('Image Registered', async (event) => void (await handleImageRegistered(trigger, event.detail)));

  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackHost(host) && !options.apiToken) throw new Error(`refusing to listen on ${host} without an API token (${API_TOKEN_ENV}); only loopback may go without one`);
  const app = createApp(ports, { apiToken: options.apiToken });
  // A port in use must fail the start (and release the database lock), not hang it.
  const server: ServerType = await new Promise<ServerType>((ready, fail) => {
    const s = serve({ fetch: app.fetch, port: options.port, hostname: host }, () => ready(s));
    s.once('error', fail);
  }).catch(async (error: unknown) => {
    await dynamo.close();
    throw error;
  });
  const { port } = server.address() as AddressInfo;
  // Signed artifact URLs point at this server, whose port is known only now.
  artifacts.setBaseUrl(`http://${host}:${port}${ARTIFACT_ROUTE_PREFIX}`);

  // Sessions the previous process left running are failed and cleaned; waiting ones resume.
  if (!options.overrides?.workflow) {
    await engine.recover(async (workspace) => void (await killOrphanedRun(workspace)));
    // Results a killed process left hidden: shown when their session had committed, else removed.
    await settlePendingResults({ sessions, images, artifacts, events: bus, clock: systemClock, settings: readSettings });
  }
  const sweeper = new RetentionSweeper({
    sessions,
    artifacts,
    clock: systemClock,
    settings: readSettings,
    workDir: resolve(dataDir, 'work'),
    storeDir: artifacts.root,
    busySessions: () => engine.busySessions(),
    intervalMs: options.retentionSweepMs,
  });
  if (!options.overrides?.workflow) sweeper.start();
  await scheduler.start(await trigger.automations.list());

  return {
    url: `http://${host}:${port}`,
    ports,
    bus,
    engine,
    scheduler,
    trigger,
    sweeper,
    dataDir,
    close: async () => {
      await new Promise<void>((done) => server.close(() => done()));
      await scheduler.close();
      // Triggers still evaluating an event finish before the engine and the table go.
      await bus.idle();
      await sweeper.close();
      await engine.close();
      await dynamo.close();
    },
  };
}
