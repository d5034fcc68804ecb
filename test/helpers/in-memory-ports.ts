import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { ConflictError, NotFoundError } from '../../functions/core/errors.ts';
import type { ImageRecord } from '../../functions/core/model/image.ts';
import type { ProductEvent } from '../../functions/ports/event-publisher.ts';
import { answersRecord, type ImageReadOptions, type ImageRegistry } from '../../functions/ports/image-registry.ts';
import { memoryImagePage, referencedBy } from '../core/images-fakes.ts';
import { DEFAULT_WORKFLOW_SETTINGS, type StepPorts } from '../../functions/steps/step-ports.ts';
import { MemorySessions } from './cfs-fakes.ts';

/** A hand-written fake keyed map with the stores' contract (conflict on create, not-found on update). */
class MemoryTable<T> {
  readonly items = new Map<string, T>();
  constructor(
    private readonly idOf: (t: T) => string,
    private readonly kind: string,
  ) {}
  async create(item: T) {
    if (this.items.has(this.idOf(item))) throw new ConflictError(`${this.kind} exists`);
    this.items.set(this.idOf(item), structuredClone(item));
  }
  async get(id: string) {
    const item = this.items.get(id);
    return item ? structuredClone(item) : undefined;
  }
  async list() {
    return [...this.items.values()].map((i) => structuredClone(i));
  }
  async update(id: string, change: (t: T) => T) {
    const item = this.items.get(id);
    if (!item) throw new NotFoundError(this.kind, id);
    const next = change(structuredClone(item));
    this.items.set(id, JSON.parse(JSON.stringify(next)) as T);
    return structuredClone(next);
  }
  async delete(id: string) {
    return this.items.delete(id);
  }
}

/** The registry port over the table: reads hide results pending their session, as the real registry's do. */
function registryOver(table: MemoryTable<ImageRecord>): ImageRegistry {
  return {
    create: (image) => table.create(image),
    get: async (id, options?: ImageReadOptions) => {
      const image = await table.get(id);
      return image && answersRecord(image, options) ? image : undefined;
    },
    list: async (options?: ImageReadOptions) => (await table.list()).filter((image) => answersRecord(image, options)),
    update: (id, change) => table.update(id, change),
    delete: (id) => table.delete(id),
    page: async (query) => memoryImagePage(await table.list(), query),
    claimUnreferenced: async (key) => !referencedBy(await table.list(), key),
    referencesIndexed: async () => true,
    markReferencesIndexed: async () => undefined,
  };
}

export interface FakeStepPorts extends StepPorts {
  sessionTable: MemorySessions;
  imageTable: MemoryTable<ImageRecord>;
  artifacts: FsArtifactStore;
  published: ProductEvent[];
  setNow(iso: string): void;
  dispose(): void;
}

/** Step ports with in-memory records, a real filesystem artifact store in a temp dir and a settable clock. */
export function fakeStepPorts(): FakeStepPorts {
  const dir = mkdtempSync(join(tmpdir(), 'cfs-steps-'));
  const sessionTable = new MemorySessions();
  const imageTable = new MemoryTable<ImageRecord>((i) => i.id, 'image');
  const published: ProductEvent[] = [];
  let now = new Date('2026-11-26T10:00:00Z');
  return {
    sessionTable,
    imageTable,
    sessions: sessionTable,
    images: registryOver(imageTable),
    artifacts: new FsArtifactStore(join(dir, 'artifacts')),
    events: { publish: async (event) => void published.push(event) },
    clock: { now: () => now },
    settings: async () => ({ ...DEFAULT_WORKFLOW_SETTINGS, imageWaitTimeoutSeconds: 600, imagePollIntervalSeconds: 5 }),
    published,
    setNow: (iso) => {
      now = new Date(iso);
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
