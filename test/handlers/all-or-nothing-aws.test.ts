import { readRunDocument } from '../../functions/core/workflow/run-document-store.ts';
import { S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../../functions/adapters/aws/s3-artifact-store.ts';
import { DynamoDbImageRegistry } from '../../functions/adapters/dynamodb/dynamodb-image-registry.ts';
import { DynamoDbSessionStore } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { startLocalDynamo, type LocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { failSessionState } from '../../functions/handlers/fail-session.ts';
import { packageImageState } from '../../functions/handlers/package-and-upload.ts';
import { recordArtifactState } from '../../functions/handlers/record-artifact.ts';
import { renderInventoryState } from '../../functions/handlers/render-inventory.ts';
import { logger, stepHandler } from '../../functions/handlers/shared/step-handler.ts';
import { stageImageState } from '../../functions/handlers/stage-image.ts';
import type { ProductEvent } from '../../functions/ports/event-publisher.ts';
import { systemClock } from '../../functions/ports/clock.ts';
import { DEFAULT_WORKFLOW_SETTINGS, type StepPorts } from '../../functions/steps/step-ports.ts';
import { pendingSession, registerImage } from '../helpers/session-fixtures.ts';
import { startLocalS3, type LocalS3 } from '../helpers/local-s3.ts';

/**
 * All or nothing on the AWS path: the step handlers as their Lambdas run them, against DynamoDB
 * (dynalite, the same table schema) and S3 (s3rver, one bucket as a deployment has it).
 */
const A = '11111111-1111-4111-8111-111111111111';
const C = '33333333-3333-4333-8333-333333333333';
const TABLE = 'cfs-aon';

logger.setLogLevel('SILENT');

let dir: string;
let s3: LocalS3;
let client: S3Client;
let dynamo: LocalDynamo;
let ports: StepPorts;
let events: ProductEvent[];
let run = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aon-aws-'));
  s3 = await startLocalS3(join(dir, 's3'), ['cfs-artifacts']);
  client = s3.client;
  dynamo = await startLocalDynamo({ tableName: TABLE });
});
afterAll(async () => {
  await dynamo.close();
  await s3.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  events = [];
  ports = {
    sessions: new DynamoDbSessionStore(dynamo.documents, TABLE),
    images: new DynamoDbImageRegistry(dynamo.documents, TABLE),
    artifacts: new S3ArtifactStore(client, { bucket: 'cfs-artifacts' }),
    events: { publish: async (event) => void events.push(event) },
    clock: systemClock,
    settings: async () => DEFAULT_WORKFLOW_SETTINGS,
  };
});

const on = <D extends { state: string }>(definition: D) => stepHandler({ ...(definition as never as Parameters<typeof stepHandler>[0]), ports: () => ports });

/** A session over two images staged and rendered by their handlers, both results uploaded as the runner does; `tamper` rewrites the second after the runner measured it. */
async function uploadedSession(tamper: boolean) {
  const name = `aon-${++run}`;
  await registerImage(ports, A, 'a').catch(() => undefined);
  await registerImage(ports, C, 'c').catch(() => undefined);
  await ports.sessions.create(pendingSession(name, { Compute: [A, C] }));
  await on(stageImageState)({ session: name, image_id: A });
  await on(stageImageState)({ session: name, image_id: C });
  await on(renderInventoryState)({ session: name });
  const plan = (await ports.sessions.get(name))!.status.plan!;
  // The runner writes where its copy of the run document says: under its own prefix.
  const document = (await readRunDocument(ports.artifacts, name))!;
  const runnerPrefix = (id: string) => document.images.find((i) => i.image_id === id)!.upload_prefix;
  const images = [];
  for (const staged of plan) {
    const rootfs = await ports.artifacts.put(`${runnerPrefix(staged.image_id)}rootfs`, `customized ${staged.image_id}`);
    images.push({ image_id: staged.image_id, result_id: staged.result_id, result_name: staged.result_name, staged: true, customized: true, uploaded: { rootfs } });
  }
  const second = plan.find((p) => p.image_id === C)!;
  if (tamper) await ports.artifacts.put(`${runnerPrefix(C)}rootfs`, `tampered ${'x'.repeat(C.length + 2)}`);
  await ports.artifacts.put(document.outcome_key, JSON.stringify({ session: name, status: 'succeeded', started: 't0', finished: 't1', layers: [], images }));
  return { name, first: plan.find((p) => p.image_id === A)!, second };
}

describe('all or nothing through the step Lambdas on DynamoDB and S3', () => {
  it('shows no result of a session whose second image fails verification, and FailSession removes the first', async () => {
    // Arrange
    const { name, first, second } = await uploadedSession(true);
    // Act
    await on(packageImageState)({ session: name, image_id: A });
    const whilePrepared = { get: await ports.images.get(first.result_id), listed: (await ports.images.list()).some((i) => i.id === first.result_id), events: events.length };
    const attempt = on(packageImageState)({ session: name, image_id: C });
    await expect(attempt).rejects.toMatchObject({ name: 'IntegrityError' });
    const failure = await on(failSessionState)({ session: name, error: { Error: 'IntegrityError', Cause: JSON.stringify({ errorType: 'IntegrityError', errorMessage: 'md5 differs' }) } });
    // Assert
    expect(whilePrepared).toEqual({ get: undefined, listed: false, events: 0 });
    expect(failure).toMatchObject({ step: 'package', image_id: C });
    expect(await ports.images.get(first.result_id, { includePending: true })).toBeUndefined();
    expect(await ports.artifacts.list(first.upload_prefix)).toEqual([]);
    expect(await ports.artifacts.list(second.upload_prefix)).toEqual([]);
    expect(events.map((e) => [e.detailType, e.detail.succeeded])).toEqual([['Session Completed', 'false']]);
  });

  it('shows and announces both results only when RecordArtifacts completes the session', async () => {
    // Arrange
    const { name, first, second } = await uploadedSession(false);
    // Act
    const results = [await on(packageImageState)({ session: name, image_id: A }), await on(packageImageState)({ session: name, image_id: C })];
    const beforeRecord = (await ports.images.list()).filter((i) => [first.result_id, second.result_id].includes(i.id));
    await on(recordArtifactState)({ session: name, results });
    // Assert
    expect(beforeRecord).toEqual([]);
    expect((await ports.images.list()).filter((i) => [first.result_id, second.result_id].includes(i.id))).toHaveLength(2);
    expect(events.map((e) => e.detailType)).toEqual(['Image Registered', 'Image Registered', 'Session Completed']);
    expect((await ports.sessions.get(name))?.status.session).toMatchObject({ status: 'complete', succeeded: 'true' });
  });
});
