import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { HttpRequest } from '@smithy/core/protocols';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ensureTableSchema } from '../dynamodb/table-migration.ts';
import { packageRoot } from './package-root.ts';
import { WorkerDynamoHandler } from './worker-dynamo-handler.ts';

/** A running embedded DynamoDB-protocol server and clients bound to it. */
export interface LocalDynamo {
  /** Posts its requests to the database worker thread, without a socket (WorkerDynamoHandler). */
  client: DynamoDBClient;
  documents: DynamoDBDocumentClient;
  /** dynalite over loopback HTTP, for other processes and tools. */
  endpoint: string;
  close(): Promise<void>;
}

type WorkerNotice = { type: 'ready'; port: number } | { type: 'error'; message: string } | { type: 'closed' } | { type: string };

/**
 * Starts dynalite in a worker thread (dynalite-worker.mjs) on 127.0.0.1 (a free port),
 * persisted under `path` when given (in memory otherwise), and creates the table on first
 * start, or brings one made by an older version up to today's indexes (table-migration.ts).
 * The clients post their requests to the worker; the HTTP port serves everyone else. `close`
 * releases the leveldb lock and ends the worker.
 */
export async function startLocalDynamo(options: { path?: string; tableName: string }): Promise<LocalDynamo> {
  if (options.path) mkdirSync(options.path, { recursive: true });
  const worker = new Worker(join(packageRoot(), 'functions', 'adapters', 'local', 'dynalite-worker.mjs'), { workerData: { path: options.path } });
  const notice = (accept: (n: WorkerNotice) => boolean) =>
    new Promise<WorkerNotice>((resolve, reject) => {
      const onMessage = (n: WorkerNotice) => {
        if (!accept(n)) return;
        worker.off('message', onMessage);
        resolve(n);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the database worker exited with code ${code}`)));
    });
  const started = await notice((n) => n.type === 'ready' || n.type === 'error').catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  if (started.type === 'error') {
    await worker.terminate();
    throw new Error(`the embedded database did not start: ${(started as { message: string }).message}`);
  }
  const endpoint = `http://127.0.0.1:${(started as { port: number }).port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
    requestHandler: new WorkerDynamoHandler(worker),
    // Nothing to sign: the request never leaves the process, and dynalite checks no signature.
    signer: { sign: async (request: HttpRequest) => request },
  });
  const documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const close = async () => {
    client.destroy();
    const closed = notice((n) => n.type === 'closed').catch(() => undefined);
    worker.postMessage({ type: 'close' });
    await closed;
    await worker.terminate();
  };
  try {
    await ensureTableSchema(client, options.tableName);
  } catch (error) {
    await close();
    throw error;
  }
  return { client, documents, endpoint, close };
}
