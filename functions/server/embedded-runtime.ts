import { serve, type ServerType } from '@hono/node-server';
import { mkdirSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Server as HttpServer } from 'node:http';
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
import { projectDashboardDir } from '../adapters/local/package-root.ts';
import { RetentionSweeper } from '../adapters/local/retention-sweeper.ts';
import type { S3ArtifactStore } from '../adapters/aws/s3-artifact-store.ts';
import type { S3Client } from '@aws-sdk/client-s3';
import { runnerS3Environment, type S3StoreLocation } from './s3-store-location.ts';
import { openS3ArtifactStore } from './s3-store.ts';
import { handleImageRegistered, runAutomations, type TriggerPorts } from '../core/automations/trigger.ts';
import { optionDefaultsFrom, settingsReader } from '../core/options/workflow-settings.ts';
import { DEFAULT_MAX_CONCURRENT_RUNS } from './defaults.ts';
import { RUNNER_VERSION } from '../runner/runner-version.ts';
import { startRunnerProcess } from '../adapters/local/process-runner.ts';
import { DynamoDbSourceStore } from '../adapters/dynamodb/dynamodb-source-store.ts';
import { FsSourceSecretStore } from '../adapters/local/fs-source-secret-store.ts';
import { defaultWorkspaceMemoryBytes, WorkspaceMemoryBudget } from '../adapters/local/workspace-memory-budget.ts';
import { killOrphanedRun } from '../runner/workspace.ts';
import { settlePendingResults } from '../steps/fail-session.ts';
import { DEFAULT_WORKFLOW_SETTINGS, type WorkflowSettings } from '../steps/step-ports.ts';
import { createApp } from '../api/app.ts';
import { DashboardLogin, isLoopbackHost } from '../api/auth.ts';
import { loadOrCreateApiToken } from './api-token.ts';
import { lingerBeforeClosing } from './lingering-close.ts';
import { BodilessStatusResponse } from './bodiless-response.ts';
import { checkListening, WILDCARD_HOSTS } from './listening.ts';
import { ensureSelfSignedCertificate, readTlsFiles, type TlsFiles } from './tls.ts';
import { ARTIFACT_ROUTE_PREFIX } from '../api/routes/artifacts.ts';
import { systemClock } from '../ports/clock.ts';
import type { AppPorts } from '../ports/index.ts';

/** The ports a test may replace in the embedded runtime; every other port stays the real adapter. */
export interface EmbeddedPortOverrides {
  /** What the API starts and stops sessions with (default: the embedded engine). */
  workflow?: AppPorts['workflow'];
  /** What configurations' and automations' layers are resolved with (default: the git CLI). */
  git?: AppPorts['git'];
}

export interface EmbeddedOptions {
  /** Everything the server writes lives below this directory. */
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  /** Default 127.0.0.1; any other than loopback requires TLS (or `insecureHttp`). */
  host?: string;
  /**
   * The token every request but signed artifact URLs, the dashboard's files and the health and
   * version routes must carry as `Authorization: Bearer` (CFS_API_TOKEN); default the one kept in
   * `<dataDir>/api-token` (mode 0600), made at first start. Given, it is written there too.
   */
  apiToken?: string;
  /** Serve HTTPS with this certificate and key (re-read by `reloadTls`, which `cfs server` calls on SIGHUP). */
  tls?: TlsFiles;
  /** Serve HTTPS with a self-signed certificate for the public URL's host, kept in `<dataDir>/tls`. */
  tlsSelfSigned?: boolean;
  /** A TLS-terminating proxy is in front: plain HTTP off loopback is allowed. */
  insecureHttp?: boolean;
  /** The address clients reach the server at (signed artifact URLs use it); default `<scheme>://<host>:<port>`. Never 0.0.0.0. */
  publicUrl?: string;
  /** Clone URL schemes git may use (default https, ssh, file). */
  cloneUrlSchemes?: string[];
  /**
   * Named ports a test replaces (a fake workflow starter). They change what the API calls, never
   * the start-up: recovery and the retention sweeps still run on the real engine and stores.
   */
  overrides?: EmbeddedPortOverrides;
  /** Workflow settings (image wait timeout, poll interval, squashfs, ...); defaults otherwise. */
  workflow?: Partial<WorkflowSettings>;
  /** How many sessions may run Ansible at once (default DEFAULT_MAX_CONCURRENT_RUNS). */
  maxConcurrentRuns?: number;
  /** The layers' network in the runner's sandbox (`cfs server --network`; the runner's default, egress, when unset). Never a session's to choose. */
  runnerNetwork?: 'egress' | 'none';
  /** Bytes of RAM the runners may unpack roots into, together (`cfs server --workspace-memory`); default half the machine's memory, 0: always on disk. */
  workspaceMemoryBytes?: number;
  /** How often retention sweeps (expired sessions, orphaned workspaces); default 5 minutes, and once at start. */
  retentionSweepMs?: number;
  /**
   * Keep every artifact in this S3 bucket (under its prefix) instead of `<dataDir>/artifacts`
   * (`cfs server --artifact-store s3://BUCKET[/prefix] --s3-endpoint URL`): upload and download
   * URLs are then the store's presigned ones, and the runners read and write it as in AWS.
   */
  artifactStore?: S3StoreLocation;
}

export interface EmbeddedRuntime {
  /** Where this process reaches the API (loopback when the server listens on every address). */
  url: string;
  /** The address signed URLs and the sign-in link use. */
  publicUrl: string;
  /** The API token (bearer) this server requires. */
  apiToken: string;
  /** One-time sign-in codes for the dashboard (`<publicUrl>/login?code=...`). */
  login: DashboardLogin;
  /** Re-reads the TLS certificate and key (nothing to do over plain HTTP). */
  reloadTls(): void;
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
 * data directory, the API on 127.0.0.1. Start-up, in order: check the listening options, open
 * the stores, build the engine and the ports, listen, recover what a previous process left, and
 * start the retention sweeps and the automation schedules.
 */
export async function startEmbeddedRuntime(options: EmbeddedOptions): Promise<EmbeddedRuntime> {
  const host = options.host ?? '127.0.0.1';
  const secure = options.tls !== undefined || options.tlsSelfSigned === true;
  checkListening({ host, secure, insecureHttp: options.insecureHttp, publicUrl: options.publicUrl });
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const apiToken = loadOrCreateApiToken(dataDir, options.apiToken);
  const tlsFiles = options.tls ?? (options.tlsSelfSigned ? ensureSelfSignedCertificate(resolve(dataDir, 'tls'), certificateHost(host, options.publicUrl)) : undefined);

  const stores = await openStores(dataDir, options);
  const engine = buildEngine(stores, dataDir, options);
  const { ports, trigger, scheduler } = composePorts(stores, engine, options.overrides);
  const served = await serveApi(ports, { host, port: options.port, secure, tlsFiles, apiToken, publicUrl: options.publicUrl }).catch(async (error: unknown) => {
    // A port in use must fail the start and release the database lock, not hang it.
    await stores.dynamo.close();
    throw error;
  });
  // Signed artifact URLs point at this server, whose port is known only now (S3 presigns its own).
  if (stores.artifacts instanceof FsArtifactStore) stores.artifacts.setBaseUrl(`${served.publicUrl}${ARTIFACT_ROUTE_PREFIX}`);

  // Always, whatever ports a test overrides: the real engine and stores own the data directory.
  await recoverInterruptedRuns(stores, engine);
  const sweeper = startRetentionSweeps(stores, engine, dataDir, options.retentionSweepMs);
  await scheduler.start(await trigger.automations.list());

  return {
    url: served.origins[0]!,
    publicUrl: served.publicUrl,
    apiToken,
    login: served.login,
    reloadTls: served.reloadTls,
    ports,
    bus: stores.bus,
    engine,
    scheduler,
    trigger,
    sweeper,
    dataDir,
    close: async () => {
      await served.close();
      await scheduler.close();
      // Triggers still evaluating an event finish before the engine and the table go.
      await stores.bus.idle();
      await sweeper.close();
      await engine.close();
      await stores.dynamo.close();
      stores.s3Client?.destroy();
    },
  };
}

/** What the data directory holds, opened: the table and its stores, the artifacts, the bus and the settings. */
interface EmbeddedStores {
  dynamo: Awaited<ReturnType<typeof startLocalDynamo>>;
  /** The filesystem store under the data directory, or the operator's S3 bucket. */
  artifacts: FsArtifactStore | S3ArtifactStore;
  /** The S3 store's client, destroyed at close. */
  s3Client?: S3Client;
  bus: InProcessEventBus;
  sessions: DynamoDbSessionStore;
  images: DynamoDbImageRegistry;
  configurations: DynamoDbConfigurationStore;
  automations: DynamoDbAutomationStore;
  options: DynamoDbOptionsStore;
  sources: DynamoDbSourceStore;
  /** Sources' git logins: owner-only files under `<dataDir>/source-secrets`. */
  sourceSecrets: FsSourceSecretStore;
  git: GitCliResolver;
  readSettings: () => Promise<WorkflowSettings>;
}

/** Opens dynalite (persisted in `<dataDir>/db`), the artifact store and the stores on the one table. */
async function openStores(dataDir: string, options: EmbeddedOptions): Promise<EmbeddedStores> {
  // The bucket first: an unreachable one refuses the start before the database is locked.
  const s3 = options.artifactStore ? await openS3ArtifactStore(options.artifactStore) : undefined;
  const dynamo = await startLocalDynamo({ path: resolve(dataDir, 'db'), tableName: DEFAULT_TABLE_NAME }).catch((error: unknown) => {
    s3?.client.destroy();
    throw error;
  });
  // Image bytes under the data directory (else in the bucket); the signing secret is kept there so URLs outlive a restart.
  const artifacts =
    s3?.store ??
    new FsArtifactStore(resolve(dataDir, 'artifacts'), {
      secret: await loadOrCreateSigningSecret(resolve(dataDir, 'artifact-url-secret')),
    });
  // No other process can open this database (leveldb locks it): records written here are served from memory.
  const tableUse = { soleWriter: true };
  const git = new GitCliResolver({ allowedSchemes: options.cloneUrlSchemes });
  const settings: WorkflowSettings = {
    ...DEFAULT_WORKFLOW_SETTINGS,
    allowedCloneSchemes: [...git.allowedSchemes],
    ...options.workflow,
  };
  // The settings above are the options' defaults; options PATCHed through the API win at run time.
  const optionsStore = new DynamoDbOptionsStore(dynamo.documents, DEFAULT_TABLE_NAME, optionDefaultsFrom(settings), tableUse);
  return {
    dynamo,
    artifacts,
    ...(s3 ? { s3Client: s3.client } : {}),
    bus: new InProcessEventBus(),
    sessions: new DynamoDbSessionStore(dynamo.documents, DEFAULT_TABLE_NAME, tableUse),
    images: new DynamoDbImageRegistry(dynamo.documents, DEFAULT_TABLE_NAME),
    configurations: new DynamoDbConfigurationStore(dynamo.documents, DEFAULT_TABLE_NAME, tableUse),
    automations: new DynamoDbAutomationStore(dynamo.documents, DEFAULT_TABLE_NAME, tableUse),
    options: optionsStore,
    sources: new DynamoDbSourceStore(dynamo.documents, DEFAULT_TABLE_NAME, tableUse),
    sourceSecrets: new FsSourceSecretStore(resolve(dataDir, 'source-secrets')),
    git,
    readSettings: settingsReader(optionsStore, settings),
  };
}

/** The embedded workflow engine: sessions run in `<dataDir>/work`, at most `maxConcurrentRuns` at once. */
function buildEngine(stores: EmbeddedStores, dataDir: string, options: EmbeddedOptions): LocalWorkflowEngine {
  const { sessions, images, artifacts, bus, readSettings } = stores;
  return new LocalWorkflowEngine({
    ports: { sessions, images, artifacts, events: bus, clock: systemClock, settings: readSettings, sources: stores.sources },
    // The runner reads a filesystem store in place, else the bucket through the environment, as in AWS.
    ...(artifacts instanceof FsArtifactStore ? { storeDir: artifacts.root } : { storeEnvironment: runnerS3Environment(options.artifactStore!) }),
    workDir: resolve(dataDir, 'work'),
    maxConcurrentRuns: options.maxConcurrentRuns ?? DEFAULT_MAX_CONCURRENT_RUNS,
    events: bus,
    sourceSecrets: stores.sourceSecrets,
    ...workspaceMemoryOf(options),
    ...(options.runnerNetwork ? { startRunner: (runner) => startRunnerProcess({ ...runner, network: options.runnerNetwork }) } : {}),
  });
}

/** The engine's workspace memory budget: the operator's size, else half the machine's memory; none at 0. */
function workspaceMemoryOf(options: EmbeddedOptions): { workspaceMemory?: WorkspaceMemoryBudget } {
  const bytes = options.workspaceMemoryBytes ?? defaultWorkspaceMemoryBytes();
  return bytes > 0 ? { workspaceMemory: new WorkspaceMemoryBudget(bytes) } : {};
}

/** The API's ports (with a test's named overrides), the trigger's ports and the automation schedules, subscribed to the bus. */
function composePorts(stores: EmbeddedStores, engine: LocalWorkflowEngine, overrides: EmbeddedPortOverrides | undefined) {
  // The trigger's ports are known once `ports` is built; a tick cannot come before start() arms it.
  const scheduler = new AutomationScheduler({ run: (names) => runAutomations(trigger, names, 'schedule') });
  const ports: AppPorts = {
    sessions: stores.sessions,
    configurations: stores.configurations,
    images: stores.images,
    artifacts: stores.artifacts,
    workflow: overrides?.workflow ?? engine,
    events: stores.bus,
    git: overrides?.git ?? stores.git,
    clock: systemClock,
    options: stores.options,
    automations: stores.automations,
    automationSchedules: scheduler,
    sources: stores.sources,
    sourceSecrets: stores.sourceSecrets,
  };
  const trigger: TriggerPorts = { ...ports, automations: stores.automations, runnerVersion: RUNNER_VERSION };
  // Automations that build on new images (the engine's own subscription wakes waiting sessions).
  stores.bus.subscribe('Image Registered', async (event) => void (await handleImageRegistered(trigger, event.detail)));
  return { ports, trigger, scheduler };
}

/** The API served over HTTP(S), with what only listening tells: the port, hence the origins and the public URL. */
interface ServedApi {
  origins: string[];
  publicUrl: string;
  login: DashboardLogin;
  reloadTls(): void;
  close(): Promise<void>;
}

/** Listens on `host:port` (HTTPS with `tlsFiles`) and serves the API app, built once the origins are known. */
async function serveApi(
  ports: AppPorts,
  listen: { host: string; port: number; secure: boolean; tlsFiles: TlsFiles | undefined; apiToken: string; publicUrl: string | undefined },
): Promise<ServedApi> {
  const { host, secure, tlsFiles, apiToken } = listen;
  const tlsContext = tlsFiles ? readTlsFiles(tlsFiles) : undefined;
  // The app needs the port (its own origins), known once listening: until then requests wait for it.
  let appReady!: (app: ReturnType<typeof createApp>) => void;
  const appBuilt = new Promise<ReturnType<typeof createApp>>((done) => (appReady = done));
  const fetch = async (request: Request, env: unknown) => (await appBuilt).fetch(request, env);
  const server: ServerType = await new Promise<ServerType>((ready, fail) => {
    const s = tlsContext
      ? serve({ fetch, port: listen.port, hostname: host, createServer: createHttpsServer, serverOptions: { ...tlsContext, minVersion: 'TLSv1.2', ServerResponse: BodilessStatusResponse } }, () => ready(s))
      : serve({ fetch, port: listen.port, hostname: host, serverOptions: { ServerResponse: BodilessStatusResponse } }, () => ready(s));
    s.once('error', fail);
  });
  lingerBeforeClosing(server as HttpServer);
  const { port } = server.address() as AddressInfo;
  const origins = ownOrigins(secure ? 'https' : 'http', host, port);
  const publicUrl = listen.publicUrl ? new URL(listen.publicUrl).origin : origins[0]!;
  if (!origins.includes(publicUrl)) origins.push(publicUrl);
  const login = new DashboardLogin(apiToken, { secure: publicUrl.startsWith('https:') });
  appReady(createApp(ports, { apiToken, login, origins, dashboardDir: projectDashboardDir() }));
  return {
    origins,
    publicUrl,
    login,
    reloadTls: () => {
      if (tlsFiles) (server as HttpsServer).setSecureContext({ ...readTlsFiles(tlsFiles), minVersion: 'TLSv1.2' });
    },
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/** Sessions the previous process left running are failed and cleaned; waiting ones resume; hidden results are settled. */
async function recoverInterruptedRuns(stores: EmbeddedStores, engine: LocalWorkflowEngine): Promise<void> {
  await engine.recover(async (workspace) => void (await killOrphanedRun(workspace)));
  // Results a killed process left hidden: shown when their session had committed, else removed.
  const { sessions, images, artifacts, bus, readSettings } = stores;
  await settlePendingResults({ sessions, images, artifacts, events: bus, clock: systemClock, settings: readSettings });
}

/** Retention: expired sessions and orphaned workspaces, swept once now and every `intervalMs`. */
function startRetentionSweeps(stores: EmbeddedStores, engine: LocalWorkflowEngine, dataDir: string, intervalMs: number | undefined): RetentionSweeper {
  const sweeper = new RetentionSweeper({
    sessions: stores.sessions,
    artifacts: stores.artifacts,
    clock: systemClock,
    settings: stores.readSettings,
    workDir: resolve(dataDir, 'work'),
    // Only a filesystem store leaves empty directories behind.
    ...(stores.artifacts instanceof FsArtifactStore ? { storeDir: stores.artifacts.root } : {}),
    busySessions: () => engine.busySessions(),
    intervalMs,
    // The layer cache's default cap is a share of the data directory's disk.
    layerCacheDiskDir: dataDir,
  });
  sweeper.start();
  return sweeper;
}

/** The host a self-signed certificate names: the public URL's, else the listening address. */
function certificateHost(host: string, publicUrl: string | undefined): string {
  return publicUrl ? new URL(publicUrl).hostname : host;
}

/** The origins the server answers as: loopback names with its port (when loopback reaches it) and its listening address. */
function ownOrigins(scheme: string, host: string, port: number): string[] {
  const origin = (name: string) => new URL(`${scheme}://${name}:${port}`).origin;
  const origins = WILDCARD_HOSTS.has(host) ? [] : [origin(host.includes(':') && !host.startsWith('[') ? `[${host}]` : host)];
  if (isLoopbackHost(host) || WILDCARD_HOSTS.has(host)) origins.push(origin('127.0.0.1'), origin('localhost'), origin('[::1]'));
  return [...new Set(origins)];
}
