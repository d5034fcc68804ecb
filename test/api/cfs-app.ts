import type { Hono } from 'hono';
import { afterAll, beforeAll } from 'vitest';
import { DynamoDbConfigurationStore } from '../../functions/adapters/dynamodb/dynamodb-configuration-store.ts';
import { DynamoDbImageRegistry } from '../../functions/adapters/dynamodb/dynamodb-image-registry.ts';
import { DynamoDbOptionsStore } from '../../functions/adapters/dynamodb/dynamodb-options-store.ts';
import { DynamoDbSessionStore } from '../../functions/adapters/dynamodb/dynamodb-session-store.ts';
import { startLocalDynamo } from '../../functions/adapters/local/dynalite.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { GitCliResolver } from '../../functions/adapters/local/git-cli-resolver.ts';
import { createApp } from '../../functions/api/app.ts';
import { optionDefaultsFrom } from '../../functions/core/options/workflow-settings.ts';
import { systemClock } from '../../functions/ports/clock.ts';
import type { AppPorts } from '../../functions/ports/index.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../functions/steps/step-ports.ts';
import { COMMIT_A, FakeWorkflow } from '../helpers/cfs-fakes.ts';

/** The API app over the real DynamoDB protocol (in-memory dynalite) and real git, with a fake workflow starter. */
export interface CfsTestApp {
  app: Hono;
  ports: AppPorts;
  workflow: FakeWorkflow;
  close(): Promise<void>;
}

/** What a test asks startCfsTestApp to store before it returns. */
export interface CfsTestAppOptions {
  /** Stores a one-layer configuration under this name (layer `base`, site.yml of git.example/base.git at COMMIT_A) for sessions to name. */
  configuration?: string;
}

export async function startCfsTestApp(options: CfsTestAppOptions = {}): Promise<CfsTestApp> {
  const dynamo = await startLocalDynamo({ tableName: 'cfs-api-test' });
  const workflow = new FakeWorkflow();
  // Deleting an ended session removes its documents from the store: a real one, in a temp directory.
  const store = mkdtempSync(join(tmpdir(), 'cfs-api-store-'));
  const ports: AppPorts = {
    sessions: new DynamoDbSessionStore(dynamo.documents, 'cfs-api-test'),
    configurations: new DynamoDbConfigurationStore(dynamo.documents, 'cfs-api-test'),
    images: new DynamoDbImageRegistry(dynamo.documents, 'cfs-api-test'),
    artifacts: new FsArtifactStore(store),
    events: { publish: async () => undefined },
    workflow,
    git: new GitCliResolver(),
    clock: systemClock,
    options: new DynamoDbOptionsStore(dynamo.documents, 'cfs-api-test', optionDefaultsFrom(DEFAULT_WORKFLOW_SETTINGS)),
  };
  const close = async () => {
    await dynamo.close();
    rmSync(store, { recursive: true, force: true });
  };
  if (options.configuration !== undefined) {
    await ports.configurations.put({
      name: options.configuration,
      last_updated: '2026-11-26T09:00:00Z',
      layers: [{ name: 'base', clone_url: 'https://git.example/base.git', playbook: 'site.yml', commit: COMMIT_A }],
    });
  }
  return { app: createApp(ports), ports, workflow, close };
}

/**
 * Registers a suite's hooks for one CfsTestApp: started in beforeAll (with `options`), closed in
 * afterAll. Its app, ports and workflow are there from the beforeAll on.
 */
export function cfsTestAppForSuite(options: CfsTestAppOptions = {}): Omit<CfsTestApp, 'close'> {
  let started: CfsTestApp | undefined;
  beforeAll(async () => {
    started = await startCfsTestApp(options);
  });
  afterAll(async () => {
    await started?.close();
  });
  const current = (): CfsTestApp => {
    if (!started) throw new Error('the CFS test app starts in beforeAll');
    return started;
  };
  return {
    get app() {
      return current().app;
    },
    get ports() {
      return current().ports;
    },
    get workflow() {
      return current().workflow;
    },
  };
}

/** A response body as the tests read it: any JSON, asserted on field by field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** A JSON request through the app, as a client would send it; returns status, headers and parsed body. */
export async function call(app: Hono, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const response = await app.request(path, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: (text ? JSON.parse(text) : undefined) as Json };
}
