import type { ArtifactStore } from '../ports/artifact-store.ts';
import type { RunDocument, RunProgress } from '../core/workflow/run-document.ts';

type LayerState = RunProgress['layers'][number]['state'];

/**
 * Records which layer runs now in the progress document (`progress_key` of the run document),
 * so the control plane can show each layer live: the outcome is written only at the end.
 * Writes are serialized and never fail the run (progress is a view, not a result).
 */
export class ProgressRecorder {
  private readonly progress: RunProgress;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly document: Pick<RunDocument, 'session' | 'layers' | 'progress_key'>,
    private readonly store: ArtifactStore,
    private readonly now: () => Date,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.progress = {
      session: document.session,
      updated: now().toISOString(),
      layers: document.layers.map((l) => ({ index: l.index, name: l.name, state: 'pending' as const })),
    };
  }

  /** A snapshot of the document as it stands. */
  snapshot(): RunProgress {
    return structuredClone(this.progress);
  }

  /** Marks the layer at `position` (its place in the run document) started. */
  started(position: number): Promise<void> {
    return this.set(position, 'running', { start_time: this.now().toISOString() });
  }

  /** Marks the layer at `position` ended. */
  ended(position: number, state: 'succeeded' | 'failed'): Promise<void> {
    return this.set(position, state, { end_time: this.now().toISOString() });
  }

  /** The run is over: layers that never ran are skipped, one still marked running failed. */
  finish(): Promise<void> {
    const stamp = this.now().toISOString();
    for (const layer of this.progress.layers) {
      if (layer.state === 'pending') layer.state = 'skipped';
      else if (layer.state === 'running') Object.assign(layer, { state: 'failed', end_time: stamp });
    }
    return this.write();
  }

  private set(position: number, state: LayerState, times: { start_time?: string; end_time?: string }): Promise<void> {
    const layer = this.progress.layers[position];
    if (layer) Object.assign(layer, { state, ...times });
    return this.write();
  }

  private write(): Promise<void> {
    const key = this.document.progress_key;
    if (!key) return Promise.resolve();
    this.progress.updated = this.now().toISOString();
    const body = JSON.stringify(this.progress, null, 2);
    this.writing = this.writing
      .then(() => this.store.put(key, body, { contentType: 'application/json' }))
      .then(
        () => undefined,
        (error: unknown) => this.log(`could not write the progress document ${key}: ${(error as Error).message}`),
      );
    return this.writing;
  }
}
