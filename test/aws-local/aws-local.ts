import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { ApiClient } from '../../functions/cli/api-client.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';
import { TempRepos } from '../helpers/git-repo.ts';
import { ApiFront } from './api-front.ts';
import { AwsStandIns, LOCAL_CREDENTIALS } from './aws-stand-ins.ts';
import { GitHttps } from './git-https.ts';
import { deployedShape, REGION, runnerImageEnvironment, type DeployedShape } from './template.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

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
  return {
    shape,
    aws,
    front,
    dynamo,
    s3,
    git,
    cliEnv,
    api: new ApiClient({ env: cliEnv }),
    repo(files) {
      const made = repos.with(files);
      return { url: git.serve(`layer-${++served}`, made.repo.dir), commit: made.commit };
    },
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
