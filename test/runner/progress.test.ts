import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { debugHoldDetails } from '../../functions/runner/debug-hold.ts';
import { ProgressRecorder } from '../../functions/runner/progress.ts';
import { runProgressSchema } from '../../functions/core/workflow/run-document.ts';
import { workspaceLayout } from '../../functions/runner/workspace.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const layers = [
  { index: 0, name: 'base', clone_url: 'file:///r', commit: 'a'.repeat(40), playbook: 'site.yml' },
  { index: 1, name: 'extra', clone_url: 'file:///r', commit: 'b'.repeat(40), playbook: 'extra.yml' },
];

describe('the progress document', () => {
  it('is rewritten as layers start and end, and the end marks layers that never ran as skipped', async () => {
    // Arrange
    const dir = mkdtempSync(join(tmpdir(), 'cfs-progress-'));
    dirs.push(dir);
    const store = new FsArtifactStore(dir);
    let tick = 0;
    const now = () => new Date(Date.UTC(2026, 10, 26, 10, 0, tick++));
    const recorder = new ProgressRecorder({ session: 's1', layers, progress_key: 'sessions/s1/runner-progress.json' }, store, now);
    const read = async () => {
      const chunks: Buffer[] = [];
      for await (const c of await store.get('sessions/s1/runner-progress.json')) chunks.push(c as Buffer);
      return runProgressSchema.parse(JSON.parse(Buffer.concat(chunks).toString()));
    };
    // Act
    await recorder.started(0);
    const during = await read();
    await recorder.ended(0, 'failed');
    await recorder.finish();
    const after = await read();
    // Assert
    expect(during.layers.map((l) => l.state)).toEqual(['running', 'pending']);
    expect(after.layers).toEqual([
      { index: 0, name: 'base', state: 'failed', start_time: '2026-11-26T10:00:01.000Z', end_time: '2026-11-26T10:00:03.000Z' },
      { index: 1, name: 'extra', state: 'skipped' },
    ]);
  });

  it('names the session a cached layer came from as soon as it is restored', async () => {
    // Arrange
    const dir = mkdtempSync(join(tmpdir(), 'cfs-progress-'));
    dirs.push(dir);
    const store = new FsArtifactStore(dir);
    const recorder = new ProgressRecorder({ session: 's1', layers, progress_key: 'p.json' }, store, () => new Date(0));
    // Act
    await recorder.cached(0, { session: 'build-7', created: '2026-11-26T08:00:00Z' });
    const chunks: Buffer[] = [];
    for await (const c of await store.get('p.json')) chunks.push(c as Buffer);
    const written = runProgressSchema.parse(JSON.parse(Buffer.concat(chunks).toString()));
    // Assert
    expect(written.layers[0]).toEqual({ index: 0, name: 'base', state: 'cached', cached: { session: 'build-7', created: '2026-11-26T08:00:00Z' } });
    expect(written.layers[1]!.state).toBe('pending');
  });

  it('writes nothing when the run document names no progress key', async () => {
    // Arrange
    const dir = mkdtempSync(join(tmpdir(), 'cfs-progress-'));
    dirs.push(dir);
    const store = new FsArtifactStore(dir);
    const recorder = new ProgressRecorder({ session: 's1', layers }, store, () => new Date());
    // Act
    await recorder.started(0);
    await recorder.finish();
    // Assert
    expect(await store.list('')).toEqual([]);
  });
});

describe('the debug hold details', () => {
  it("name each image root and layer clone with this CLI's --enter and --rerun, and no script in the workspace", () => {
    // Arrange
    const layout = workspaceLayout('/data/work/workspaces/s1');
    // Act
    const details = debugHoldDetails({
      document: { session: 's1', layers },
      layout,
      inventory: '/data/work/workspaces/s1/inventory/inventory.yaml',
      roots: [{ image_id: 'img-1', root: '/data/work/workspaces/s1/images/img-1' }],
    });
    // Assert
    expect(details).toEqual({
      workspace: '/data/work/workspaces/s1',
      inventory: '/data/work/workspaces/s1/inventory/inventory.yaml',
      images: [{ image_id: 'img-1', root: '/data/work/workspaces/s1/images/img-1', enter: 'cfs sessions debug s1 --enter img-1' }],
      layers: [
        { index: 0, name: layers[0]!.name, directory: '/data/work/workspaces/s1/layers/0', command: 'cfs sessions debug s1 --rerun 0' },
        { index: 1, name: layers[1]!.name, directory: '/data/work/workspaces/s1/layers/1', command: 'cfs sessions debug s1 --rerun 1' },
      ],
    });
  });
});
