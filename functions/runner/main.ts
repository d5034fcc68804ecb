/**
 * The runner program: the ECS task's entry point in AWS, a child process of the embedded
 * engine on one machine (bundled to dist/runner.mjs).
 *
 *   node dist/runner.mjs --document-key KEY --store-dir DIR --workspace DIR [--network egress|none]
 *
 * (env CFS_CHANGE_CAPTURE=tree forces the layer cache's tree-compare path)
 *
 * or, in ECS, the same settings from RUN_DOCUMENT_KEY, RUNNER_WORKSPACE and the S3 store
 * (settings.ts). It reads the run document from the store, runs the customization and writes
 * the outcome document back. Exit codes (failures.ts): 0 succeeded, 1 a layer failed, 2 bad
 * input, 3 staging or integrity failure, 4 environment, 5 packaging or upload failure,
 * 143 terminated by SIGTERM or out of its time budget.
 */
import { closeSync, readFileSync, realpathSync } from 'node:fs';
import type { SourceSecret } from '../core/sources/source-record.ts';
import { pathToFileURL } from 'node:url';
import { FsArtifactStore } from '../adapters/local/fs-artifact-store.ts';
import type { ArtifactStore } from '../ports/artifact-store.ts';
import { oneLine, RUNNER_EXIT_CODES, RunnerFailure } from './failures.ts';
import { type RunDocument } from '../core/workflow/run-document.ts';
import { parseRunDocument } from './run-document.ts';
import { runCustomization } from './run-customization.ts';
import { runnerSettings, type RunnerSettings } from './settings.ts';
import { awsSourceSecrets, type SourceSecretLookup } from './source-access.ts';
import { workspaceMemoryFor } from './workspace-memory.ts';

export { runCustomization } from './run-customization.ts';
export type { RunnerDeps, RunResult } from './run-customization.ts';

/** The store the settings name: a local directory, or S3 (loaded only then, so local starts stay fast). */
async function createStore(settings: RunnerSettings): Promise<ArtifactStore> {
  if (settings.storeDir) return new FsArtifactStore(settings.storeDir);
  const [{ S3Client }, { S3ArtifactStore }] = await Promise.all([import('@aws-sdk/client-s3'), import('../adapters/aws/s3-artifact-store.ts')]);
  const client = new S3Client(settings.s3Endpoint ? { endpoint: settings.s3Endpoint, forcePathStyle: true } : {});
  return new S3ArtifactStore(client, settings.s3Bucket ? { bucket: settings.s3Bucket, ...(settings.s3Prefix ? { prefix: settings.s3Prefix } : {}) } : {});
}

async function readJson(store: ArtifactStore, key: string): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.get(key)) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/**
 * A document that fails the schema still gets a failed outcome when it names where to write
 * one, so the workflow reads a reason instead of a bare task failure.
 */
async function writeInputFailure(store: ArtifactStore, raw: unknown, reason: string): Promise<void> {
  const doc = raw as Partial<RunDocument> | undefined;
  if (typeof doc?.outcome_key !== 'string' || typeof doc.session !== 'string') return;
  const stamp = new Date().toISOString();
  const outcome = { session: doc.session, status: 'failed', reason: oneLine(reason), started: stamp, finished: stamp, images: [], layers: [] };
  await store.put(doc.outcome_key, JSON.stringify(outcome, null, 2), { contentType: 'application/json' }).catch(() => {});
}

/**
 * The sources' logins the embedded engine wrote to descriptor `fd` (a JSON object by secret
 * name), read to its end and closed at once, so no process the runner starts inherits it.
 * They stay in this process's memory only. No descriptor: none (ECS reads Secrets Manager, source-access.ts).
 */
function readSourceSecrets(fd: number | undefined): Map<string, SourceSecret> {
  const secrets = new Map<string, SourceSecret>();
  if (fd === undefined) return secrets;
  let text: string;
  try {
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  const parsed = JSON.parse(text || '{}') as Record<string, Partial<SourceSecret>>;
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value?.username !== 'string' || typeof value.password !== 'string') throw new Error(`the secret '${name}' is not a username and password`);
    secrets.set(name, { username: value.username, password: value.password });
  }
  return secrets;
}

/** Set to `tree` to capture the layer cache's change sets by comparing trees even where overlays could be mounted. */
export const CHANGE_CAPTURE_ENV = 'CFS_CHANGE_CAPTURE';

/** Runs the program with the given argv and environment; resolves with the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const started = performance.now();
  // Seconds since start on every line, so a slow phase shows in the engine's runner log.
  const say = (line: string) => process.stderr.write(`cfs-runner [+${((performance.now() - started) / 1000).toFixed(2)}s] ${line}\n`);
  let settings: RunnerSettings;
  let store: ArtifactStore;
  let document: RunDocument;
  let raw: unknown;
  try {
    settings = runnerSettings(argv, env);
    store = await createStore(settings);
  } catch (error) {
    say((error as Error).message);
    return error instanceof RunnerFailure ? error.exitCode : RUNNER_EXIT_CODES.environment;
  }
  try {
    raw = await readJson(store, settings.documentKey);
    document = parseRunDocument(raw);
  } catch (error) {
    const reason = error instanceof RunnerFailure ? error.message : `cannot read the run document ${settings.documentKey}: ${(error as Error).message}`;
    say(reason);
    await writeInputFailure(store, raw, reason);
    return RUNNER_EXIT_CODES.input;
  }

  let sourceSecrets: SourceSecretLookup;
  try {
    if (settings.sourceSecretsFd === undefined && !settings.storeDir) {
      // AWS: no engine to pipe the logins; this run's short-lived access reads its own session's secrets.
      sourceSecrets = await awsSourceSecrets({ store, documentKey: settings.documentKey, document, secretPrefix: settings.sourceSecretPrefix, log: say });
    } else {
      const piped = readSourceSecrets(settings.sourceSecretsFd);
      sourceSecrets = async (secretName) => piped.get(secretName);
    }
  } catch (error) {
    say(`cannot read the sources' credentials: ${(error as Error).message}`);
    await writeInputFailure(store, raw, `cannot read the sources' credentials: ${(error as Error).message}`);
    return RUNNER_EXIT_CODES.input;
  }

  const controller = new AbortController();
  const stop = (signal: string) => {
    say(`${signal} received: stopping Ansible and cleaning up`);
    controller.abort();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    const { outcome, exitCode } = await runCustomization(document, {
      store,
      // A store on this machine's disk is read and written in place instead of through copies.
      ...(store instanceof FsArtifactStore ? { local: store } : {}),
      workspace: settings.workspace,
      signal: controller.signal,
      sandbox: settings.sandbox,
      network: settings.network,
      memory: workspaceMemoryFor(settings.workspaceMemoryBytes),
      // The layer cache's tree-compare path, forced (as on Fargate) where the runner could mount.
      ...(env[CHANGE_CAPTURE_ENV] === 'tree' ? { changeCapture: 'tree' as const } : {}),
      log: say,
      sourceSecrets,
      ...(settings.echoLayerOutput ? { onLayerOutput: (chunk: Buffer) => void process.stdout.write(chunk) } : {}),
    });
    say(`${outcome.status}${outcome.reason ? `: ${outcome.reason}` : ''} (exit ${exitCode}); outcome at ${document.outcome_key}`);
    return exitCode;
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2), process.env);
}
