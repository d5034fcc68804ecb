import { serve, type ServerType } from '@hono/node-server';
import { mkdirSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
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
import { startRunnerProcess } from '../adapters/local/process-runner.ts';
import { killOrphanedRun } from '../runner/workspace.ts';
import { settlePendingResults } from '../steps/fail-session.ts';
import { DEFAULT_WORKFLOW_SETTINGS, type WorkflowSettings } from '../steps/step-ports.ts';
import { createApp } from '../api/app.ts';
import { DashboardLogin, isLoopbackHost } from '../api/auth.ts';
import { loadOrCreateApiToken } from './api-token.ts';
import { checkListening, WILDCARD_HOSTS } from './listening.ts';
import { ensureSelfSignedCertificate, readTlsFiles, type TlsFiles } from './tls.ts';
import { ARTIFACT_ROUTE_PREFIX } from '../api/routes/artifacts.ts';
import { systemClock } from '../ports/clock.ts';
import type { AppPorts } from '../ports/index.ts';

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
  /** Replaces ports (tests inject fakes, e.g. a workflow starter, until every adapter lands). */
  overrides?: Partial<AppPorts>;
  /** Workflow settings (image wait timeout, poll interval, squashfs, ...); defaults otherwise. */
  workflow?: Partial<WorkflowSettings>;
  /** How many sessions may run Ansible at once (default DEFAULT_MAX_CONCURRENT_RUNS). */
  maxConcurrentRuns?: number;
  /** The layers' network in the runner's sandbox (`cfs server --network`; the runner's default, egress, when unset). Never a session's to choose. */
  runnerNetwork?: 'egress' | 'none';
  /** How often retention sweeps (expired sessions, orphaned workspaces); default 5 minutes, and once at start. */
  retentionSweepMs?: number;
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
 * data directory, the API on 127.0.0.1.
 */
export async function startEmbeddedRuntime(options: EmbeddedOptions): Promise<EmbeddedRuntime> {
  const host = options.host ?? '127.0.0.1';
  const secure = options.tls !== undefined || options.tlsSelfSigned === true;
  checkListening({ host, secure, insecureHttp: options.insecureHttp, publicUrl: options.publicUrl });
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const apiToken = loadOrCreateApiToken(dataDir, options.apiToken);
  const tlsFiles = options.tls ?? (options.tlsSelfSigned ? ensureSelfSignedCertificate(resolve(dataDir, 'tls'), certificateHost(host, options.publicUrl)) : undefined);
  const tlsContext = tlsFiles ? readTlsFiles(tlsFiles) : undefined;
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
    ...(options.runnerNetwork ? { startRunner: (runner) => startRunnerProcess({ ...runner, network: options.runnerNetwork }) } : {}),
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

  // The app needs the port (its own origins), known once listening: until then requests wait for it.
  let appReady!: (app: ReturnType<typeof createApp>) => void;
  const appBuilt = new Promise<ReturnType<typeof createApp>>((done) => (appReady = done));
  const fetch = async (request: Request, env: unknown) => (await appBuilt).fetch(request, env);
  // A port in use must fail the start (and release the database lock), not hang it.
  const server: ServerType = await new Promise<ServerType>((ready, fail) => {
    const s = tlsContext
      ? serve({ fetch, port: options.port, hostname: host, createServer: createHttpsServer, serverOptions: { ...tlsContext, minVersion: 'TLSv1.2' } }, () => ready(s))
      : serve({ fetch, port: options.port, hostname: host }, () => ready(s));
    s.once('error', fail);
  }).catch(async (error: unknown) => {
    await dynamo.close();
    throw error;
  });
  const { port } = server.address() as AddressInfo;
  const scheme = secure ? 'https' : 'http';
  const origins = ownOrigins(scheme, host, port);
  const publicUrl = options.publicUrl ? new URL(options.publicUrl).origin : origins[0]!;
  if (!origins.includes(publicUrl)) origins.push(publicUrl);
  const login = new DashboardLogin(apiToken, { secure: publicUrl.startsWith('https:') });
  appReady(createApp(ports, { apiToken, login, origins }));
  // Signed artifact URLs point at this server, whose port is known only now.
  artifacts.setBaseUrl(`${publicUrl}${ARTIFACT_ROUTE_PREFIX}`);

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
    url: origins[0]!,
    publicUrl,
    apiToken,
    login,
    reloadTls: () => {
      if (tlsFiles) (server as HttpsServer).setSecureContext({ ...readTlsFiles(tlsFiles), minVersion: 'TLSv1.2' });
    },
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
