/** A record as stored, with the version its item carries. */
export interface VersionedRecord<T> {
  doc: T;
  version: number;
}

/**
 * The records of one kind as this process last wrote or read them, for a table no other
 * process writes (the embedded server owns its database alone). Every step of a session reads
 * the records it works on, so without it most reads fetch again what this process just wrote.
 *
 * Bounded (least recently used out first); callers get their own copies, so nothing they do to
 * a record reaches the cache. Reads and writes race, so each is kept only when it cannot be
 * older than the table: a write when no later write of the same record began meanwhile, a read
 * when no write of that record was in flight or ended while it ran.
 */
export class RecordCache<T> {
  /** null: the record is known not to exist. */
  private readonly entries = new Map<string, VersionedRecord<T> | null>();
  private clock = 0;
  /** Per record: the tick of the newest write begun, and how many are in flight. */
  private readonly writes = new Map<string, { begun: number; inflight: number; touched: number }>();
  /** Reads begun before this tick may have missed a write whose bookkeeping was pruned. */
  private forgottenBefore = 0;

  constructor(private readonly maxEntries = 5000) {}

  /** A copy of the cached record, null when it is known not to exist, undefined when not cached. */
  get(id: string): VersionedRecord<T> | null | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    this.entries.set(id, entry);
    return entry && { doc: structuredClone(entry.doc), version: entry.version };
  }

  /** Call before reading the table; pass the tick to `readEnded`. */
  readBegins(): number {
    return ++this.clock;
  }

  /** Keeps what a read returned (undefined: nothing stored), unless a write of that record overlapped the read. */
  readEnded(id: string, record: VersionedRecord<T> | undefined, tick: number): void {
    const write = this.writes.get(id);
    if (tick < this.forgottenBefore || (write && (write.inflight > 0 || write.touched > tick))) return;
    this.set(id, record ?? null);
  }

  /** Call before writing or deleting `id`: the cached copy is dropped until the write ends. */
  writeBegins(id: string): number {
    const tick = ++this.clock;
    const write = this.writes.get(id) ?? { begun: 0, inflight: 0, touched: 0 };
    write.begun = tick;
    write.inflight++;
    write.touched = tick;
    this.writes.set(id, write);
    this.entries.delete(id);
    return tick;
  }

  /** Call when a write ends, with what it stored: a record, null for a delete, undefined when it failed. */
  writeEnded(id: string, tick: number, stored?: VersionedRecord<T> | null): void {
    const write = this.writes.get(id);
    if (!write) return;
    write.inflight--;
    write.touched = ++this.clock;
    if (stored !== undefined && write.begun === tick) this.set(id, stored);
    if (write.inflight === 0) this.prune();
  }

  private set(id: string, record: VersionedRecord<T> | null): void {
    this.entries.delete(id);
    this.entries.set(id, record && { doc: structuredClone(record.doc), version: record.version });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Drops the bookkeeping of settled writes beyond the bound; reads older than what was dropped are then not kept. */
  private prune(): void {
    if (this.writes.size <= this.maxEntries) return;
    for (const [id, write] of this.writes) {
      if (this.writes.size <= this.maxEntries / 2) break;
      if (write.inflight > 0) continue;
      this.forgottenBefore = Math.max(this.forgottenBefore, write.touched + 1);
      this.writes.delete(id);
    }
  }
}
