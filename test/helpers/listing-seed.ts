import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { sessionItems } from '../../functions/adapters/dynamodb/session-index.ts';
import { toStoredDoc } from '../../functions/adapters/dynamodb/stored-keys.ts';
import { listKey, recordKey } from '../../functions/adapters/dynamodb/table-schema.ts';
import type { ConfigurationRecord } from '../../functions/core/model/configuration.ts';
import type { SessionRecord, SessionStatus, SessionSucceeded } from '../../functions/core/model/session.ts';

/** A stored session as createSession would leave it, with the fields listings filter on. */
export function listedSession(
  name: string,
  options: { status?: SessionStatus; succeeded?: SessionSucceeded; start?: string; tags?: Record<string, string> } = {},
): SessionRecord {
  return {
    name,
    configuration: { name: 'configurations-example', limit: '' },
    ansible: { config: 'cfs-default-ansible-cfg', limit: '', verbosity: 0, passthrough: '' },
    target: { definition: 'image', groups: [{ name: 'Compute', members: ['3fa85f64-5717-4562-b3fc-2c963f66afa6'] }], image_map: [] },
    tags: options.tags ?? {},
    debug_on_failure: false,
    status: {
      session: {
        status: options.status ?? 'complete',
        succeeded: options.succeeded ?? (options.status === 'pending' || options.status === 'running' ? 'none' : 'true'),
        start_time: options.start ?? '2026-11-20T10:00:00Z',
        ...(options.status === undefined || options.status === 'complete' ? { completion_time: options.start ?? '2026-11-20T10:00:00Z' } : {}),
      },
      artifacts: [],
      layers: [{ name: 'base', clone_url: 'https://git.example/base.git', commit: 'a'.repeat(40), playbook: 'site.yml' }],
    },
  };
}

/**
 * Writes sessions straight to the table, exactly the items the session store writes (25 per
 * BatchWriteItem, a few batches at a time): thousands of sessions in seconds, for listing
 * tests and the listing benchmark.
 */
export async function seedSessions(documents: DynamoDBDocumentClient, tableName: string, sessions: SessionRecord[]): Promise<void> {
  const items = sessions.flatMap((s) => sessionItems(s));
  const batches: Array<Array<Record<string, unknown>>> = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      let pending: Array<Record<string, unknown>> | undefined = batches[next++]!.map((Item) => ({ PutRequest: { Item } }));
      while (pending?.length) {
        const out: { UnprocessedItems?: Record<string, unknown> } = await documents.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending as never } }));
        pending = out.UnprocessedItems?.[tableName] as Array<Record<string, unknown>> | undefined;
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** Writes configurations straight to the table, exactly the items the configuration store's put writes (version 1). */
export async function seedConfigurations(documents: DynamoDBDocumentClient, tableName: string, configurations: ConfigurationRecord[]): Promise<void> {
  const items = configurations.map((c) => ({ ...recordKey('CONFIG', c.name), ...listKey('CONFIG', c.name), version: 1, doc: toStoredDoc(c) }));
  for (let i = 0; i < items.length; i += 25) {
    let pending: Array<Record<string, unknown>> | undefined = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
    while (pending?.length) {
      const out: { UnprocessedItems?: Record<string, unknown> } = await documents.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending as never } }));
      pending = out.UnprocessedItems?.[tableName] as Array<Record<string, unknown>> | undefined;
    }
  }
}
