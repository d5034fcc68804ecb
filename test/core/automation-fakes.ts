import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import type { AutomationRecord } from '../../functions/core/automations/automation-record.ts';
import type { TriggerPorts } from '../../functions/core/automations/evaluation.ts';
import { ConflictError, NotFoundError } from '../../functions/core/errors.ts';
import { ROOTFS_TYPE, type ImageRecord } from '../../functions/core/model/image.ts';
import type { AutomationStore } from '../../functions/ports/automation-store.ts';
import { FakeGit, FakeWorkflow, MemoryConfigurations, MemorySessions } from '../helpers/cfs-fakes.ts';
import { MemoryImageRegistry } from './images-fakes.ts';

/** Automations in a Map, with the store's contract (conflict on create, not-found on update). */
export class MemoryAutomations implements AutomationStore {
  readonly items = new Map<string, AutomationRecord>();
  async create(a: AutomationRecord) {
    if (this.items.has(a.name)) throw new ConflictError(`automation '${a.name}' already exists`);
    this.items.set(a.name, structuredClone(a));
  }
  async get(name: string) {
    const a = this.items.get(name);
    return a && structuredClone(a);
  }
  async list() {
    return [...this.items.values()].sort((a, b) => a.name.localeCompare(b.name)).map((a) => structuredClone(a));
  }
  async update(name: string, change: (a: AutomationRecord) => AutomationRecord) {
    const a = this.items.get(name);
    if (!a) throw new NotFoundError('automation', name);
    const next = change(structuredClone(a));
    this.items.set(name, structuredClone(next));
    return next;
  }
  async delete(name: string) {
    return this.items.delete(name);
  }
}

export const REPO = 'https://git.example/site.git';
export const RUNNER = '0.1.0+runner.1';

export interface AutomationFakes extends TriggerPorts {
  sessions: MemorySessions;
  configurations: MemoryConfigurations;
  images: MemoryImageRegistry;
  artifacts: FsArtifactStore;
  workflow: FakeWorkflow;
  git: FakeGit;
  automations: MemoryAutomations;
  setNow(iso: string): void;
  /** Registers an image with a manifest whose rootfs has the given sha256 (no bytes needed: plans read only the manifest). */
  addImage(name: string, options?: { created?: string; metadata?: Record<string, string>; rootfs?: string; arch?: 'x86_64' | 'aarch64' }): Promise<ImageRecord>;
  dispose(): void;
}

/** Trigger ports over hand-written fakes and a real filesystem artifact store in a temp dir. */
export function automationFakes(): AutomationFakes {
  const dir = mkdtempSync(join(tmpdir(), 'cfs-automation-'));
  let now = new Date('2026-11-26T10:00:00Z');
  const artifacts = new FsArtifactStore(join(dir, 'artifacts'));
  const images = new MemoryImageRegistry();
  return {
    sessions: new MemorySessions(),
    configurations: new MemoryConfigurations(),
    images,
    artifacts,
    workflow: new FakeWorkflow(),
    git: new FakeGit(),
    clock: { now: () => now },
    automations: new MemoryAutomations(),
    runnerVersion: RUNNER,
    setNow: (iso) => {
      now = new Date(iso);
    },
    async addImage(name, options = {}) {
      const id = randomUUID();
      const rootfs = options.rootfs ?? createHash('sha256').update(name).digest('hex');
      const manifest = {
        version: '1.0',
        created: now.toISOString(),
        artifacts: [{ link: { path: `s3://boot-images/${id}/rootfs`, type: 's3' }, type: ROOTFS_TYPE, md5: '0'.repeat(32), sha256: rootfs, size: 1 }],
      };
      await artifacts.put(`boot-images/${id}/manifest.json`, JSON.stringify(manifest));
      const created = options.created ?? now.toISOString();
      const image: ImageRecord = {
        id,
        name,
        created,
        arch: options.arch ?? 'x86_64',
        link: { path: `s3://boot-images/${id}/manifest.json`, type: 's3' },
        metadata: options.metadata ?? {},
        rootfs_registered: created,
      };
      await images.create(image);
      return image;
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A stored automation record as putAutomation would store it. */
export function automationRecord(name: string, overrides: Partial<AutomationRecord> = {}): AutomationRecord {
  return {
    name,
    configuration_name: 'compute-config',
    source: { name_pattern: 'compute-base-*', arch: 'x86_64' },
    groups: ['Compute'],
    result_name_template: '{source_name}_{automation}',
    on_image_registered: true,
    schedule: { expression: 'cron(0 3 * * ? *)', timezone: 'UTC' },
    only_if_changed: true,
    configuration_limit: '',
    ansible_limit: '',
    ansible_config: 'cfs-default-ansible-cfg',
    ansible_verbosity: 0,
    ansible_passthrough: '',
    debug_on_failure: false,
    created: '2026-11-26T09:00:00Z',
    last_updated: '2026-11-26T09:00:00Z',
    history: [],
    ...overrides,
  };
}
