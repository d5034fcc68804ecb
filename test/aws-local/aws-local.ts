import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { ApiClient } from '../../functions/cli/api-client.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';
import { TempRepos } from '../helpers/git-repo.ts';
import { waitFor } from '../helpers/wait.ts';
import { ApiFront } from './api-front.ts';
import { AwsStandIns, LOCAL_CREDENTIALS, type ExecutionRecord, type RunnerTask } from './aws-stand-ins.ts';
import { GitHttps } from './git-https.ts';
import { deployedShape, REGION, runnerImageEnvironment, type DeployedShape } from './template.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CFS = join(ROOT, 'bin', 'cfs.mjs');

/** One layer of a configuration the scenarios store: its repository's files and the playbook to run. */
export interface LayerSpec {
  name: string;
  files: Record<string, string>;
  playbook: string;
}

export interface AwsLocal {
  shape: DeployedShape;
  aws: AwsStandIns;
  front: ApiFront;
  dynamo: LocalDynamo;
  s3: LocalS3;
  git: GitHttps;
  /** The environment `cfs` gets: the front's URL, signing for it, the stand-in account's keys. */
  cliEnv: Record<string, string>;
  /** The CLI's own API client, signing as it does against API Gateway. */
  api: ApiClient;
  /** A layer repository holding `files`, served over HTTPS: its clone URL and commit. */
  repo(files: Record<string, string>): { url: string; commit: string };
  /** Stores configuration `name` through the API, each layer's files in a repository of its own, pinned to its commit. */
  configure(name: string, layers: LayerSpec[]): Promise<void>;
  /** Creates session `name` of `configuration` on the images through the API (group Compute). */
  createSession(name: string, configuration: string, imageIds: string[]): Promise<void>;
  /** The session's record as the API shows it (v3). */
  session(name: string): Promise<SessionRecord>;
  /** Runs the bundled CLI (bin/cfs.mjs) against the front with `cliEnv`, as a user's shell would. */
  cfs(...argv: string[]): Promise<{ code: number; out: string; err: string }>;
  /** Builds the CLI's sample root and imports it (presigned uploads, then registration); its IMS record. */
  sampleImage(name: string): Promise<{ id: string }>;
  /** The keys under `prefix` in the bucket, read from the S3 server. */
  keysUnder(prefix: string): Promise<string[]>;
  /** The Step Functions execution named `name` (a session's first execution is named after it). */
  execution(name: string): ExecutionRecord | undefined;
  /** The runner task RunAnsible started for `session` (its SESSION_NAME override). */
  runnerTask(session: string): RunnerTask | undefined;
  close(): Promise<void>;
}

/**
 * The deployed shape on one machine: the stack synthesized with `context` (cdk.json's plus
 * these), dynalite for its table, s3rver for its bucket, the AWS stand-ins for Lambda, Step
 * Functions, EventBridge, ECS and Scheduler, an HTTPS git server for the layers, and the API
 * front. Only the services are stood in for: every function runs its staged bundle, the runner
 * its image's entry point.
 */
export async function startAwsLocal(context: Record<string, string> = {}): Promise<AwsLocal> {
  const dir = mkdtempSync(join(tmpdir(), 'cfs-aws-local-'));
  const shape = deployedShape(context);
  const dynamo = await startLocalDynamo({ tableName: shape.tableName });
  const s3 = await startLocalS3(join(dir, 's3'), [shape.bucketName]);
  const git = new GitHttps(mkdtempSync(join(dir, 'tls-')));
  await git.start();
  const s3Endpoint = String((await s3.client.config.endpoint!()).hostname);
  const s3Port = (await s3.client.config.endpoint!()).port;
  const aws = new AwsStandIns({
    shape,
    endpoints: { dynamodb: dynamo.endpoint, s3: `http://${s3Endpoint}:${s3Port}` },
    extraEnvironment: { NODE_EXTRA_CA_CERTS: git.ca, GIT_SSL_CAINFO: git.ca },
    runner: { entryPoint: join(ROOT, 'dist', 'runner-image', 'runner.mjs'), imageEnvironment: runnerImageEnvironment(join(ROOT, 'functions', 'runner', 'Dockerfile')) },
  });
  await aws.start();
  const front = new ApiFront({ invoke: (event) => aws.invoke(shape.apiFunctionArn, event, 'API Gateway'), credentials: { [LOCAL_CREDENTIALS.accessKeyId]: LOCAL_CREDENTIALS.secretAccessKey } });
  await front.start();
  const cliEnv = {
    CFS_API_URL: front.url,
    CFS_API_SIGV4_REGION: REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: REGION,
  };
  // The in-process client signs with the standard credential chain, as the CLI does: this process is the user's shell.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey });
  const repos = new TempRepos();
  let served = 0;
  const api = new ApiClient({ env: cliEnv });
  const repo = (files: Record<string, string>) => {
    const made = repos.with(files);
    return { url: git.serve(`layer-${++served}`, made.repo.dir), commit: made.commit };
  };
  const cfs = (...argv: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((done) => {
      execFile(process.execPath, [CFS, ...argv], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...cliEnv } }, (error, out, err) =>
        done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
      );
    });
  return {
    shape,
    aws,
    front,
    dynamo,
    s3,
    git,
    cliEnv,
    api,
    repo,
    async configure(name, layers) {
      const pinned = layers.map((layer) => {
        const made = repo(layer.files);
        return { name: layer.name, clone_url: made.url, commit: made.commit, playbook: layer.playbook };
      });
      await api.request('PUT', `/apis/cfs/v3/configurations/${name}`, { body: { layers: pinned } });
    },
    async createSession(name, configuration, imageIds) {
      await api.request('POST', '/apis/cfs/v3/sessions', { body: { name, configuration_name: configuration, target: { definition: 'image', groups: [{ name: 'Compute', members: imageIds }] } } });
    },
    async session(name) {
      return (await api.request<SessionRecord>('GET', `/apis/cfs/v3/sessions/${name}`)).body!;
    },
    cfs,
    async sampleImage(name) {
      const built = await cfs('images', 'build-sample', '--name', name, '--format', 'json');
      if (built.code !== 0) throw new Error(`cfs images build-sample exited ${built.code}: ${built.err}`);
      return JSON.parse(built.out) as { id: string };
    },
    async keysUnder(prefix) {
      const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: shape.bucketName, Prefix: prefix }));
      return (listed.Contents ?? []).map((o) => o.Key!);
    },
    execution: (name) => [...aws.executions.values()].find((e) => e.name === name),
    runnerTask: (session) => [...aws.tasks.values()].find((t) => t.session === session),
    async close() {
      await aws.close();
      await front.close();
      await git.close();
      await s3.close();
      await dynamo.close();
      repos.disposeAll();
      shape.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The deployed shape for one test file: started in `beforeAll` (with `context` given to the
 * synth), closed in `afterAll`. The object forwards to the started one, so a file reads
 * `local.aws` in its tests without a `let` of its own.
 */
export function awsLocalForSuite(context: Record<string, string> = {}): AwsLocal {
  let started: AwsLocal | undefined;
  beforeAll(async () => {
    started = await startAwsLocal(context);
  });
  afterAll(async () => {
    await started?.close();
  });
  return new Proxy({} as AwsLocal, {
    get(_target, key) {
      if (!started) throw new Error('the deployed shape starts in beforeAll');
      return Reflect.get(started, key) as unknown;
    },
  });
}

/** Reads every 250 ms until `done` holds (test/helpers/wait.ts's poll); the timeout's error shows the last value read. */
export async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 240_000): Promise<T> {
  let last: T | undefined;
  const probe = async () => {
    last = await read();
    return done(last) ? { value: last } : undefined;
  };
  try {
    return (await waitFor(probe, timeoutMs, what, 250)).value;
  } catch (error) {
    throw new Error(`${(error as Error).message}; last read: ${JSON.stringify(last)}`);
  }
}

/** A session that has ended, either way. */
export const ended = (s: SessionRecord) => s.status.session.status === 'complete';

/** A one-task playbook on the image that writes `content` to `dest`. */
export const playbook = (dest: string, content: string) => `- hosts: cfs_image\n  gather_facts: false\n  tasks:\n    - copy: { dest: ${dest}, content: ${content} }\n`;
