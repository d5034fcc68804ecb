import { serve, type ServerType } from '@hono/node-server';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { DynamoDbConfigurationStore } from '../adapters/dynamodb/dynamodb-configuration-store.ts';
import { DynamoDbImageRegistry } from '../adapters/dynamodb/dynamodb-image-registry.ts';
import { DynamoDbSessionStore } from '../adapters/dynamodb/dynamodb-session-store.ts';
import { DEFAULT_TABLE_NAME } from '../adapters/dynamodb/table-schema.ts';
import { startLocalDynamo } from '../adapters/local/dynalite.ts';
import { createApp } from '../api/app.ts';
import { systemClock } from '../ports/clock.ts';
import type { AppPorts } from '../ports/index.ts';

export interface EmbeddedOptions {
  /** Everything the server writes lives below this directory. */
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  host?: string;
}

export interface EmbeddedRuntime {
  url: string;
  ports: AppPorts;
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

  const ports: AppPorts = {
    sessions: new DynamoDbSessionStore(dynamo.documents, DEFAULT_TABLE_NAME),
    configurations: new DynamoDbConfigurationStore(dynamo.documents, DEFAULT_TABLE_NAME),
    images: new DynamoDbImageRegistry(dynamo.documents, DEFAULT_TABLE_NAME),
    artifacts: notWired('artifacts'),
    workflow: notWired('workflow'),
    events: notWired('events'),
    git: notWired('git'),
    clock: systemClock,
  };

  const app = createApp(ports);
  const host = options.host ?? '127.0.0.1';
  const server: ServerType = await new Promise((ready) => {
    const s = serve({ fetch: app.fetch, port: options.port, hostname: host }, () => ready(s));
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${host}:${port}`,
    ports,
    dataDir,
    close: async () => {
      await new Promise<void>((done) => server.close(() => done()));
      await dynamo.close();
    },
  };
}

/** Scaffolding while adapters land: fails loudly rather than pretending. */
function notWired<T>(what: string): T {
  return new Proxy({} as object, {
    get: (_target, prop) => () => {
      throw new Error(`${what}.${String(prop)} is not wired into the embedded runtime yet`);
    },
  }) as T;
}
