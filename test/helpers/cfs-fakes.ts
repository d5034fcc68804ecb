import { ConflictError, GitError, NotFoundError } from '../../functions/core/errors.ts';
import type { ConfigurationRecord } from '../../functions/core/model/configuration.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import type { ProductOptions, StoredOptions } from '../../functions/core/options/options-schemas.ts';
import { optionDefaultsFrom } from '../../functions/core/options/workflow-settings.ts';
import { sessionMatches } from '../../functions/core/sessions/filters.ts';
import type { ConfigurationStore } from '../../functions/ports/configuration-store.ts';
import type { GitResolver } from '../../functions/ports/git-resolver.ts';
import type { OptionsStore } from '../../functions/ports/options-store.ts';
import type { SessionFilter, SessionPageRequest, SessionStore } from '../../functions/ports/session-store.ts';
import type { WorkflowStarter } from '../../functions/ports/workflow-starter.ts';
import { DEFAULT_WORKFLOW_SETTINGS } from '../../functions/steps/step-ports.ts';

/** A workflow starter that only records calls and leaves sessions pending (the real workflow is another issue's). */
export class FakeWorkflow implements WorkflowStarter {
  readonly started: string[] = [];
  readonly startedWith: Array<{ name: string; plannedJob?: string }> = [];
  readonly stopped: Array<{ name: string; job: string }> = [];
  failWith?: Error;
  /** Set by a test to act as a runtime that plans its execution ids; `start` uses the planned id only when it ends in the session's name. */
  plannedJob?: (session: SessionRecord) => string;
  async start(name: string, plannedJob?: string) {
    if (this.failWith) throw this.failWith;
    this.started.push(name);
    this.startedWith.push({ name, ...(plannedJob ? { plannedJob } : {}) });
    return plannedJob?.endsWith(`-${name}`) ? plannedJob : `execution-${name}`;
  }
  async stop(name: string, job: string) {
    this.stopped.push({ name, job });
  }
}

/** Hand-written in-memory stores with the adapters' contract (ConflictError, NotFoundError, ordered lists). */
export class MemorySessions implements SessionStore {
  readonly items = new Map<string, SessionRecord>();
  async create(s: SessionRecord) {
    if (this.items.has(s.name)) throw new ConflictError(`session '${s.name}' already exists`);
    this.items.set(s.name, structuredClone(s));
  }
  async get(name: string) {
    const s = this.items.get(name);
    return s && structuredClone(s);
  }
  private sorted() {
    return [...this.items.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((s) => structuredClone(s));
  }
  async list() {
    return this.sorted();
  }
  async query({ filter, limit, after }: SessionPageRequest) {
    const matching = this.sorted().filter((s) => (after === undefined || s.name > after) && sessionMatches(s, filter));
    const sessions = matching.slice(0, limit);
    return matching.length > limit ? { sessions, next: sessions[sessions.length - 1]!.name } : { sessions };
  }
  async matchingNames(filter: SessionFilter) {
    return this.sorted().filter((s) => sessionMatches(s, filter)).map((s) => s.name);
  }
  async update(name: string, change: (s: SessionRecord) => SessionRecord) {
    const s = this.items.get(name);
    if (!s) throw new NotFoundError('session', name);
    const next = change(structuredClone(s));
    this.items.set(name, structuredClone(next));
    return next;
  }
  async delete(name: string) {
    return this.items.delete(name);
  }
}

export class MemoryConfigurations implements ConfigurationStore {
  readonly items = new Map<string, ConfigurationRecord>();
  async put(c: ConfigurationRecord) {
    this.items.set(c.name, structuredClone(c));
  }
  async get(name: string) {
    const c = this.items.get(name);
    return c && structuredClone(c);
  }
  async list() {
    return [...this.items.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((c) => structuredClone(c));
  }
  async page(limit: number, after?: string) {
    const all = (await this.list()).filter((c) => after === undefined || c.name > after);
    const configurations = all.slice(0, limit);
    return all.length > limit ? { configurations, next: configurations[configurations.length - 1]!.name } : { configurations };
  }
  async delete(name: string) {
    return this.items.delete(name);
  }
}

/** The options record in memory, with the embedded runtime's defaults unless given others. */
export class MemoryOptions implements OptionsStore {
  stored: StoredOptions = {};
  constructor(readonly defaults: ProductOptions = optionDefaultsFrom(DEFAULT_WORKFLOW_SETTINGS)) {}
  async get() {
    return structuredClone(this.stored);
  }
  async update(change: (current: StoredOptions) => StoredOptions) {
    this.stored = structuredClone(change(structuredClone(this.stored)));
    return structuredClone(this.stored);
  }
}

/** Branches as a map `url#branch -> commit`; anything else is a GitError like the real resolver's. */
export class FakeGit implements GitResolver {
  readonly branches = new Map<string, string>();
  calls = 0;
  async resolveBranch(url: string, branch: string) {
    this.calls++;
    const commit = this.branches.get(`${url}#${branch}`);
    if (!commit) throw new GitError(`branch '${branch}' does not exist in ${url}`);
    return commit;
  }
}

export const IMG1 = '0f1e2d3c-4b5a-4697-8a8b-9c0d1e2f3a4b';
export const IMG2 = '1a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d';
export const COMMIT_A = 'a'.repeat(40);
export const COMMIT_B = 'b'.repeat(40);

/** Ports for the session and configuration use cases, with a fixed clock. */
export function fakeCfsPorts(now = '2026-11-26T10:00:00.123Z') {
  const ports = {
    sessions: new MemorySessions(),
    configurations: new MemoryConfigurations(),
    workflow: new FakeWorkflow(),
    git: new FakeGit(),
    clock: { now: () => new Date(now) },
    options: new MemoryOptions(),
  };
  return ports;
}

/** A stored two-layer configuration (one named layer, one unnamed). */
export function storedConfiguration(name = 'configurations-example'): ConfigurationRecord {
  return {
    name,
    last_updated: '2026-11-26T09:00:00Z',
    layers: [
      { name: 'base', clone_url: 'https://git.example/base.git', playbook: 'site.yml', commit: COMMIT_A, branch: 'main' },
      { clone_url: 'https://git.example/extra.git', playbook: 'extra.yml', commit: COMMIT_B },
    ],
  };
}
