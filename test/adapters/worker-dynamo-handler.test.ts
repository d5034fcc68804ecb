import { Worker } from 'node:worker_threads';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { WorkerDynamoHandler } from '../../functions/adapters/local/worker-dynamo-handler.ts';
import { translate } from '../../functions/adapters/dynamodb/record-table.ts';

// A database worker that dies cannot be produced with dynalite on demand; these workers stand in
// for it: one answers a request and then exits, one throws while answering.

const ANSWERS_ONCE_THEN_EXITS = `
const { parentPort } = require('node:worker_threads');
let answered = false;
parentPort.on('message', ([id]) => {
  if (answered) process.exit(3);
  answered = true;
  parentPort.postMessage([id, 200, 'application/x-amz-json-1.0', JSON.stringify({ Item: { pk: { S: 'p' } } })]);
});`;

const FAILS_EVERY_REQUEST = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ([id]) => parentPort.postMessage([id, -1, 'Error: dynalite threw']));`;

function clientOn(source: string) {
  const worker = new Worker(source, { eval: true });
  const client = new DynamoDBClient({
    endpoint: 'http://127.0.0.1:1',
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
    requestHandler: new WorkerDynamoHandler(worker),
  });
  const get = () => client.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'p' } } }));
  const failure = () => get().then(() => new Error('expected a failure'), (error: unknown) => error as Error);
  return { worker, get, failure };
}

describe('WorkerDynamoHandler', () => {
  it('answers with what the worker answered, and fails requests as a lost connection once the worker has exited', async () => {
    // Arrange
    const { get, failure } = clientOn(ANSWERS_ONCE_THEN_EXITS);
    // Act
    const first = await get();
    // Rejected by the worker's exit, so every later request finds it gone.
    const inFlight = await failure();
    const later = await failure();
    // Assert
    expect(first.Item).toEqual({ pk: { S: 'p' } });
    expect(inFlight.message).toMatch(/^ECONNRESET: the database worker exited with code 3/);
    expect(later.message).toMatch(/^ECONNREFUSED: the database worker exited with code 3/);
    expect(() => translate(later)).toThrow(expect.objectContaining({ name: 'TransientError' }));
  });

  it('rejects a request dynalite threw on with the reason, and keeps serving', async () => {
    // Arrange
    const { worker, failure } = clientOn(FAILS_EVERY_REQUEST);
    // Act
    const failures = [await failure(), await failure()];
    await worker.terminate();
    // Assert
    expect(failures.map((f) => f.message)).toEqual(['the database worker failed a request: Error: dynalite threw', 'the database worker failed a request: Error: dynalite threw']);
  });
});
