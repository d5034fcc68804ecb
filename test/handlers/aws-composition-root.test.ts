import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsRoot } from '../../functions/adapters/aws/index.ts';
import { AWS_ENV } from '../../functions/adapters/aws/environment.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';
import { ensureLambdaBundles, lambdaBundlePath } from '../infra/lambda-bundles.ts';

const TABLE = 'cfs-root-test';
const BUCKET = 'cfs-artifacts-root-test';
const IMAGE = '33333333-3333-4333-8333-333333333333';

type Handler = (event: unknown, context?: unknown) => Promise<unknown>;

/**
 * The AWS composition root and the bundled Lambda handlers, on the real protocols: dynalite for
 * DynamoDB and s3rver for S3, reached through the SDK's standard endpoint variables, exactly as
 * the functions read their environment in AWS.
 */
describe('the AWS composition root and the bundled step handlers', () => {
  let dynamo: LocalDynamo;
  let s3: S3rver;
  let s3Dir: string;
  let env: Record<string, string>;
  let raw: S3Client;
  const saved = { ...process.env };

  beforeAll(async () => {
    ensureLambdaBundles();
    dynamo = await startLocalDynamo({ tableName: TABLE });
    s3Dir = await mkdtemp(join(tmpdir(), 'cfs-root-s3-'));
    s3 = new S3rver({ port: 0, address: '127.0.0.1', directory: s3Dir, silent: true, configureBuckets: [{ name: BUCKET, configs: [] }] });
    const { port } = (await s3.run()) as { port: number };
    Object.assign(process.env, {
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    });
    env = {
      [AWS_ENV.TABLE_NAME]: TABLE,
      [AWS_ENV.ARTIFACT_BUCKET]: BUCKET,
      [AWS_ENV.EVENT_BUS_NAME]: 'cfs-events',
      [AWS_ENV.IMAGE_POLL_INTERVAL_SECONDS]: '7',
      [AWS_ENV.STATE_MACHINE_ARN]: 'arn:aws:states:eu-west-1:123456789012:stateMachine:cfs-test-sessions',
    };
    Object.assign(process.env, env);
    raw = new S3Client({ forcePathStyle: true });
  });
  afterAll(async () => {
    process.env = saved;
    raw.destroy();
    await s3.close();
    await dynamo.close();
    await rm(s3Dir, { recursive: true, force: true });
  });

  it('keeps every store key in the one artifact bucket, its first segment a prefix (IMS layout inside)', async () => {
    // Arrange
    const { artifacts } = createAwsRoot(env).stepPorts();
    // Act
    await artifacts.put('sessions/s1/run-document.json', '{}');
    await artifacts.put('boot-images/img-1/manifest.json', '{"version":"1.0"}');
    const listed = await artifacts.list('boot-images/');
    const objects = await raw.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    // Assert
    expect(listed).toEqual(['boot-images/img-1/manifest.json']);
    expect(objects.Contents?.map((o) => o.Key).sort()).toEqual(['boot-images/img-1/manifest.json', 'sessions/s1/run-document.json']);
    expect(await artifacts.list('sessions')).toEqual(['sessions/s1/run-document.json']);
  });

  it('presigns upload URLs without the SDK default CRC32 of an empty body, so a PUT of real bytes is accepted', async () => {
    // Arrange
    const { artifacts } = createAwsRoot(env).stepPorts();
    const body = Buffer.from('squashfs bytes');
    // Act
    const url = await artifacts.uploadUrl('boot-images/img-2/rootfs', 300);
    const response = await fetch(url, { method: 'PUT', body, headers: { 'Content-Length': String(body.length) } });
    // Assert
    expect(new URL(url).searchParams.has('x-amz-checksum-crc32')).toBe(false);
    expect(response.status).toBe(200);
    expect(await artifacts.head('boot-images/img-2/rootfs')).toMatchObject({ size: body.length });
  });

  it('reads the workflow settings from the environment and falls back to the defaults', () => {
    // Act
    const { workflow } = createAwsRoot(env).settings;
    // Assert
    expect(workflow).toMatchObject({ imagePollIntervalSeconds: 7, imageWaitTimeoutSeconds: 3600, allowedCloneSchemes: ['https'], squashfs: { compressor: 'source' } });
  });

  it('fails loudly, naming the variable, when a port needs a setting the function was not given', () => {
    // Arrange
    const root = createAwsRoot({ [AWS_ENV.TABLE_NAME]: TABLE });
    // Act
    const building = () => root.appPorts();
    // Assert
    expect(building).toThrow(/CFS_STATE_MACHINE_ARN is not set/);
    expect(() => createAwsRoot({ [AWS_ENV.IMAGE_POLL_INTERVAL_SECONDS]: 'soon' })).toThrow(/CFS_IMAGE_POLL_INTERVAL_SECONDS/);
  });

  it('runs the bundled ValidateImages handler: ready with the image list, as AreImagesReady reads it', async () => {
    // Arrange
    const ports = createAwsRoot(env).stepPorts();
    await registerImage(ports, IMAGE, 'base');
    await ports.sessions.create(pendingSession('bundled', { Compute: [IMAGE] }));
    const { handler } = (await import(pathToFileURL(lambdaBundlePath('validate-image')).href)) as { handler: Handler };
    // Act
    const output = await handler({ session: 'bundled' });
    // Assert
    expect(output).toEqual({ ready: true, images: [IMAGE], missing: [], poll_seconds: 7 });
  });

  it('lets the bundled handlers fail with the error names the ASL Catch clauses match', async () => {
    // Arrange
    const { handler: validate } = (await import(pathToFileURL(lambdaBundlePath('validate-image')).href)) as { handler: Handler };
    const { handler: stage } = (await import(pathToFileURL(lambdaBundlePath('stage-image')).href)) as { handler: Handler };
    // Act
    const deleted = await validate({ session: 'never-created' }).catch((error: Error) => error);
    const malformed = await stage({ session: 'bundled' }).catch((error: Error) => error);
    // Assert
    expect(deleted).toMatchObject({ name: 'SessionCancelledError' });
    expect(malformed).toMatchObject({ name: 'ValidationError', message: expect.stringContaining('StageImage: the state machine passed an input this step does not accept: image_id') });
  });

  it('serves the CFS and IMS routes from the bundled API handler behind an API Gateway proxy event', async () => {
    // Arrange
    const { handler } = (await import(pathToFileURL(lambdaBundlePath('api')).href)) as { handler: Handler };
    const event = (path: string) => ({
      resource: '/{proxy+}',
      path,
      httpMethod: 'GET',
      headers: { Accept: 'application/json' },
      multiValueHeaders: { Accept: ['application/json'] },
      queryStringParameters: null,
      multiValueQueryStringParameters: null,
      pathParameters: { proxy: path.slice(1) },
      requestContext: { stage: 'v1', path: `/v1${path}`, httpMethod: 'GET', requestId: 'r-1', identity: { sourceIp: '192.0.2.1' } },
      body: null,
      isBase64Encoded: false,
    });
    // Act
    const sessions = (await handler(event('/apis/cfs/v3/sessions'))) as { statusCode: number; body: string };
    const image = (await handler(event(`/apis/ims/v3/images/${IMAGE}`))) as { statusCode: number; body: string };
    // Assert
    expect(sessions.statusCode).toBe(200);
    expect((JSON.parse(sessions.body) as { sessions: { name: string }[] }).sessions.map((s) => s.name)).toContain('bundled');
    expect(image.statusCode).toBe(200);
    expect(JSON.parse(image.body)).toMatchObject({ id: IMAGE, name: 'base', link: { path: `s3://boot-images/${IMAGE}/manifest.json` } });
  });

  it('records the task token in the bundled WaitForImages handler and finds the wait in the table', async () => {
    // Arrange
    const { handler } = (await import(pathToFileURL(lambdaBundlePath('wait-for-images')).href)) as { handler: Handler };
    // Act
    const output = await handler({ session: 'parked', missing: ['44444444-4444-4444-8444-444444444444'], poll_seconds: 30, token: 'task-token-1' });
    const item = await dynamo.documents.send(new (await import('@aws-sdk/lib-dynamodb')).GetCommand({ TableName: TABLE, Key: { pk: 'WAIT#parked', sk: 'WAIT' } }));
    // Assert
    expect(output).toEqual({ woken: false });
    expect(item.Item).toMatchObject({ gsi1pk: 'WAITS', gsi1sk: 'parked', doc: { token: 'task-token-1' }, expires_at: expect.any(Number) });
  });

  it("runs the bundled trigger handler on a schedule's input against the automations in the table", async () => {
    // Arrange
    const { handler } = (await import(pathToFileURL(lambdaBundlePath('trigger')).href)) as { handler: Handler };
    // Act
    const output = (await handler({ automation: 'gone-nightly' })) as { woken: string[]; evaluation: { results: unknown[] } };
    // Assert
    expect(output.woken).toEqual([]);
    expect(output.evaluation.results).toEqual([{ automation: 'gone-nightly', trigger: 'schedule', outcome: 'failed', reason: "automation 'gone-nightly' does not exist" }]);
  });

  it('refuses, in the bundled clean-up handler, an event that is not an ended execution, before touching anything', async () => {
    // Arrange: the stack tells the clean-up function the runner cluster.
    process.env[AWS_ENV.RUNNER_CLUSTER] = 'arn:aws:ecs:eu-west-1:123456789012:cluster/cfs-runner';
    const { handler } = (await import(pathToFileURL(lambdaBundlePath('execution-ended')).href)) as { handler: Handler };
    // Act
    const invocation = handler({ detail: { name: 's1', status: 'RUNNING' } });
    // Assert
    await expect(invocation).rejects.toMatchObject({ name: 'ValidationError' });
  });
});
