import type { ArtifactStore } from '../ports/artifact-store.ts';
import type { RunDocument, RunProgress, TestProgress } from '../core/workflow/run-document.ts';

type LayerState = RunProgress['layers'][number]['state'];
type Ended = 'succeeded' | 'failed';

/**
 * Records which layer runs now in the progress document (`progress_key` of the run document),
 * so the control plane can show each layer live: the outcome is written only at the end.
 * Writes are serialized and never fail the run (progress is a view, not a result).
 */
export class ProgressRecorder {
  private readonly progress: RunProgress;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly document: Pick<RunDocument, 'session' | 'layers' | 'progress_key'> & Partial<Pick<RunDocument, 'images' | 'validation'>>,
    private readonly store: ArtifactStore,
    private readonly now: () => Date,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.progress = {
      session: document.session,
      updated: now().toISOString(),
      layers: document.layers.map((l) => ({ index: l.index, name: l.name, state: 'pending' as const })),
    };
    const validation = document.validation;
    if (validation && (validation.checks.length > 0 || validation.boot)) {
      this.progress.tests = (document.images ?? []).map((image) => ({
        image_id: image.image_id,
        state: 'pending' as const,
        checks: validation.checks.map((c) => ({ name: c.name, state: 'pending' as const })),
        ...(validation.boot ? { boot: { state: 'pending' as const } } : {}),
      }));
    }
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

  /** Marks the layer at `position` taken from the layer cache (it does not run), naming the session that recorded it. */
  cached(position: number, from: { session: string; created: string }): Promise<void> {
    const layer = this.progress.layers[position];
    if (layer) Object.assign(layer, { state: 'cached', cached: from });
    return this.write();
  }

  /** A check of an image's test starts (the image's test starts with its first part). */
  checkStarted(imageId: string, name: string): Promise<void> {
    const test = this.startTest(imageId);
    const check = test?.checks.find((c) => c.name === name);
    if (check) Object.assign(check, { state: 'running', start_time: this.now().toISOString() });
    return this.write();
  }

  /** A check ended. */
  checkEnded(imageId: string, name: string, state: Ended, durationMs: number): Promise<void> {
    const check = this.test(imageId)?.checks.find((c) => c.name === name);
    if (check) Object.assign(check, { state, end_time: this.now().toISOString(), duration_ms: durationMs });
    return this.write();
  }

  /** The image's boot test starts (its accelerator chosen). */
  bootStarted(imageId: string, accelerator: 'kvm' | 'tcg'): Promise<void> {
    const boot = this.startTest(imageId)?.boot;
    if (boot) Object.assign(boot, { state: 'running', accelerator, start_time: this.now().toISOString() });
    return this.write();
  }

  /** The boot test ended. */
  bootEnded(imageId: string, state: Ended, durationMs: number): Promise<void> {
    const boot = this.test(imageId)?.boot;
    if (boot) Object.assign(boot, { state, end_time: this.now().toISOString(), duration_ms: durationMs });
    return this.write();
  }

  /** The image's whole test ended (its checks, and its boot when it has one). */
  testEnded(imageId: string, state: Ended): Promise<void> {
    const test = this.test(imageId);
    if (test) Object.assign(test, { state, end_time: this.now().toISOString() });
    return this.write();
  }

  /** The run is over: layers and tests that never ran are skipped, one still marked running failed. */
  finish(): Promise<void> {
    const stamp = this.now().toISOString();
    const settle = (part: { state: LayerState; end_time?: string }) => {
      if (part.state === 'pending') part.state = 'skipped';
      else if (part.state === 'running') Object.assign(part, { state: 'failed', end_time: stamp });
    };
    for (const layer of this.progress.layers) settle(layer);
    for (const test of this.progress.tests ?? []) {
      for (const check of test.checks) settle(check);
      if (test.boot) settle(test.boot);
      settle(test);
    }
    return this.write();
  }

  private test(imageId: string): TestProgress | undefined {
    return this.progress.tests?.find((t) => t.image_id === imageId);
  }

  private startTest(imageId: string): TestProgress | undefined {
    const test = this.test(imageId);
    if (test?.state === 'pending') Object.assign(test, { state: 'running', start_time: this.now().toISOString() });
    return test;
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
