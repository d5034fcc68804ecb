import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { ConflictError, NotFoundError } from '../../functions/core/errors.ts';
import type { ImageDeps } from '../../functions/core/images/index.ts';
import type { ImageRecord } from '../../functions/core/model/image.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { sessionMatches } from '../../functions/core/sessions/filters.ts';
import type { ProductEvent } from '../../functions/ports/event-publisher.ts';
import type { ImageRegistry, SessionStore } from '../../functions/ports/index.ts';
import { answersRecord, type ImagePage, type ImagePageQuery, type ImageReadOptions } from '../../functions/ports/image-registry.ts';

/** The registry port's page over records in memory: name order for name queries, id order otherwise, the same budget rule. */
export function memoryImagePage(records: ImageRecord[], query: ImagePageQuery): ImagePage {
  const byName = query.name !== undefined || query.namePrefix !== undefined;
  const sortKey = (image: ImageRecord) => (byName ? `${image.name}\u0000${image.id}` : image.id);
  const after = query.after ? (byName ? `${query.after.name ?? ''}\u0000${query.after.id}` : query.after.id) : undefined;
  const range = records
    .filter((image) => answersRecord(image))
    .filter((image) => (query.name !== undefined ? image.name === query.name : query.namePrefix === undefined || image.name.startsWith(query.namePrefix)))
    .sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0))
    .filter((image) => after === undefined || sortKey(image) > after);
  const images: ImageRecord[] = [];
  let read = 0;
  for (const image of range) {
    if (images.length === query.limit || read === query.readBudget) {
      const last = range[read - 1]!;
      return { images, next: byName ? { id: last.id, name: last.name } : { id: last.id }, read };
    }
    read++;
    if (query.matches?.(image) ?? true) images.push(structuredClone(image));
  }
  return { images, read };
}

/** Whether any record references `key` (what the real index answers with one Query). */
export function referencedBy(records: Iterable<ImageRecord>, key: string): boolean {
  return [...records].some((image) => image.artifact_keys?.includes(key));
}

/** An image registry in a Map, with the port's semantics (conditional create, read-modify-write update). */
export class MemoryImageRegistry implements ImageRegistry {
  readonly records = new Map<string, ImageRecord>();
  async create(image: ImageRecord) {
    if (this.records.has(image.id)) throw new ConflictError(`image '${image.id}' already exists`);
    this.records.set(image.id, structuredClone(image));
  }
  async get(id: string, options?: ImageReadOptions) {
    const found = this.records.get(id);
    return found && answersRecord(found, options) ? structuredClone(found) : undefined;
  }
  async list(options?: ImageReadOptions) {
    return [...this.records.values()]
      .filter((r) => answersRecord(r, options))
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((r) => structuredClone(r));
  }
  async update(id: string, change: (current: ImageRecord) => ImageRecord) {
    const current = this.records.get(id);
    if (!current) throw new NotFoundError('image', id);
    const next = change(structuredClone(current));
    this.records.set(id, structuredClone(next));
    return next;
  }
  async delete(id: string) {
    return this.records.delete(id);
  }
  async page(query: ImagePageQuery) {
    return memoryImagePage([...this.records.values()], query);
  }
  indexed = false;
  async claimUnreferenced(key: string) {
    return !referencedBy(this.records.values(), key);
  }
  async referencesIndexed() {
    return this.indexed;
  }
  async markReferencesIndexed() {
    this.indexed = true;
  }
}

/** A session store holding a fixed list (the delete rule only queries sessions). */
export function sessionsOf(sessions: SessionRecord[]): SessionStore {
  return {
    create: async () => undefined,
    get: async (name) => sessions.find((s) => s.name === name),
    list: async () => {
      throw new Error('reads every session: find them with query');
    },
    query: async ({ filter }) => ({ sessions: sessions.filter((s) => sessionMatches(s, filter)) }),
    matchingNames: async () => {
      throw new Error('not used');
    },
    update: async () => {
      throw new Error('not used');
    },
    delete: async () => false,
  };
}

export function sessionTargeting(name: string, status: 'pending' | 'running' | 'complete', target: { members?: string[]; mapped?: string[] }): SessionRecord {
  return {
    name,
    configuration: { name: 'c', limit: '' },
    ansible: { config: '', limit: '', verbosity: 0, passthrough: '' },
    target: {
      definition: 'image',
      groups: [{ name: 'Compute', members: target.members ?? [] }],
      image_map: (target.mapped ?? []).map((source_id) => ({ source_id, result_name: `${source_id}-result` })),
    },
    tags: {},
    debug_on_failure: false,
    status: { session: { status, succeeded: 'none', start_time: '2026-01-01T00:00:00Z' }, artifacts: [], layers: [] },
  };
}

export interface ImageWorld {
  deps: ImageDeps;
  registry: MemoryImageRegistry;
  artifacts: FsArtifactStore;
  events: ProductEvent[];
  /** Makes the next `count` publishes fail. */
  failPublishes(count: number): void;
  cleanup(): Promise<void>;
}

/** Use-case dependencies: fakes for the registry, sessions, events and clock; the real filesystem store in a temp dir. */
export async function imageWorld(sessions: SessionRecord[] = []): Promise<ImageWorld> {
  const root = await mkdtemp(join(tmpdir(), 'images-core-'));
  const registry = new MemoryImageRegistry();
  const artifacts = new FsArtifactStore(join(root, 'artifacts'), { baseUrl: 'http://127.0.0.1:9/artifacts' });
  const events: ProductEvent[] = [];
  let failures = 0;
  return {
    deps: {
      images: registry,
      artifacts,
      sessions: sessionsOf(sessions),
      clock: { now: () => new Date('2026-03-04T05:06:07.000Z') },
      events: {
        publish: async (event) => {
          if (failures > 0) {
            failures--;
            throw new Error('event bus unavailable');
          }
          events.push(event);
        },
      },
    },
    registry,
    artifacts,
    events,
    failPublishes: (count) => (failures = count),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
