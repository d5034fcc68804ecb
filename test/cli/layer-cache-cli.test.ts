import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layerCacheKeys } from '../../functions/core/layer-cache/entry.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { frameLines, plainRowLine, PlainRenderer } from '../../functions/cli/progress/renderers.ts';
import { resumeHint, sessionRows, type SessionView } from '../../functions/cli/progress/session-steps.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';

const IMG = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const KEY = (c: string) => c.repeat(64);
const TWO_HOURS_AGO = () => new Date(Date.now() - 2 * 3600 * 1000).toISOString();

/** A session of three layers as the workflow leaves it, written straight into the server's store. */
function ranSession(name: string, status: Partial<SessionRecord['status']>, groups: Record<string, string[]> = { Compute: [IMG] }): SessionRecord {
  const base = pendingSession(name, groups);
  return {
    ...base,
    status: {
      ...base.status,
      session: { status: 'complete', succeeded: 'true', start_time: '2026-11-26T10:00:00Z', completion_time: '2026-11-26T10:05:00Z' },
      layers: ['base', 'site', 'last'].map((l, i) => ({ name: l, clone_url: 'https://git.example/r.git', commit: String(i).repeat(40), playbook: 'site.yml' })),
      ...status,
    },
  };
}

describe('cfs sessions and the layer cache (issue 19)', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  let repo: TempRepo;
  beforeAll(async () => {
    data = tempDataDir();
    ({ runtime } = await startServer(data.dir));
    repo = makeTempRepo();
    repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
    const file = join(data.dir, 'config.json');
    writeFileSync(file, JSON.stringify({ layers: [{ name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] }));
    expect((await cfs(runtime, 'configurations', 'update', 'c', '--file', file)).code).toBe(0);
    const created = TWO_HOURS_AGO();
    await runtime.ports.sessions.create(
      ranSession('built', {
        steps: [
          { name: 'ansible', layer: 'base', state: 'cached', cached_from: { session: 'nightly-1', created } },
          { name: 'ansible', layer: 'site', state: 'succeeded', start_time: '2026-11-26T10:01:00Z', end_time: '2026-11-26T10:02:00Z' },
        ],
        layer_keys: { [IMG]: [KEY('a'), KEY('b'), KEY('c')] },
      }),
    );
    await runtime.ports.artifacts.put(
      layerCacheKeys.changes(KEY('b')),
      JSON.stringify({
        key: KEY('b'),
        image_id: IMG,
        layer_index: 1,
        files: [
          { path: '/usr/bin/hello', change: 'added', type: 'file' },
          { path: '/etc/motd', change: 'modified', type: 'file' },
          { path: '/etc/old.conf', change: 'removed', type: 'file' },
          { path: '/usr/share/doc/hello', change: 'added', type: 'directory' },
        ],
        files_truncated: false,
        packages: {
          manager: 'dpkg',
          changes: [
            { name: 'hello', old: null, new: '2.10-3' },
            { name: 'libc6', old: '2.36-9', new: '2.36-9+deb12u4' },
          ],
        },
      }),
    );
    await runtime.ports.sessions.create(
      ranSession('broke', {
        session: { status: 'complete', succeeded: 'false', start_time: '2026-11-26T10:00:00Z', completion_time: '2026-11-26T10:05:00Z' },
        failure: { step: 'ansible', reason: 'layer last failed (exit code 2)', layer: 'last', image_id: IMG },
        steps: [
          { name: 'ansible', layer: 'base', state: 'cached', cached_from: { session: 'nightly-1', created } },
          { name: 'ansible', layer: 'site', state: 'succeeded' },
          { name: 'ansible', layer: 'last', state: 'failed' },
        ],
        layer_keys: { [IMG]: [KEY('d'), KEY('e'), KEY('f')] },
      }),
    );
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
    repo.dispose();
  });

  it('creates a session with --no-cache as a full run, and one without it that may reuse', async () => {
    // Act
    const full = await cfs(runtime, 'sessions', 'create', '--name', 'full', '--configuration-name', 'c', '--target-group', 'Compute', IMG, '--no-cache', '--format', 'json');
    const usual = await cfs(runtime, 'sessions', 'create', '--name', 'usual', '--configuration-name', 'c', '--target-group', 'Compute', IMG, '--format', 'json');
    const described = await cfs(runtime, 'sessions', 'describe', 'full');
    // Assert
    expect(full.code).toBe(0);
    expect(JSON.parse(full.out).status.layer_cache).toBe(false);
    expect((await runtime.ports.sessions.get('full'))!.layer_cache).toBe(false);
    expect(JSON.parse(usual.out).status).not.toHaveProperty('layer_cache');
    expect(described.out).toContain('layer cache    off for this session: every layer runs (--no-cache)');
  });

  it('prints a layer\'s package changes then its file changes, with counts, and says why a layer has none', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'changes', 'built');
    // Assert
    expect(res.code).toBe(0);
    const layer1 = res.out.slice(res.out.indexOf(`layer 1 site (image ${IMG})`));
    expect(layer1.split('\n').slice(0, 9)).toEqual([
      `layer 1 site (image ${IMG})`,
      '  packages (dpkg): 2 changed',
      '    + hello  installed 2.10-3',
      '    ~ libc6  2.36-9 -> 2.36-9+deb12u4',
      '  files: 4 changed: 2 added, 1 modified, 1 removed',
      '    A /usr/bin/hello',
      '    M /etc/motd',
      '    D /etc/old.conf',
      '    A /usr/share/doc/hello  (directory)',
    ]);
    expect(res.out).toContain(`layer 0 base (image ${IMG}): no changes recorded: no changes report is kept for layer 0 of session 'built'`);
    expect(res.out.indexOf('layer 0 base')).toBeLessThan(res.out.indexOf('layer 1 site'));
  });

  it('prints one layer\'s report as the API JSON with --layer, and every report found as a list without it', async () => {
    // Act
    const one = await cfs(runtime, 'sessions', 'changes', 'built', '--layer', '1', '--image', IMG, '--format', 'json');
    const all = await cfs(runtime, 'sessions', 'changes', 'built', '--format', 'yaml');
    const unknownLayer = await cfs(runtime, 'sessions', 'changes', 'built', '--layer', '7');
    // Assert
    expect(one.code).toBe(0);
    expect(JSON.parse(one.out)).toMatchObject({ key: KEY('b'), layer_index: 1, packages: { manager: 'dpkg' } });
    expect(all.out).toMatch(/^- key: b{64}$/m);
    expect(all.err).toContain('layer 0 base');
    expect(unknownLayer.code).toBe(1);
    expect(unknownLayer.err).toContain('session built has no layer 7: its layers are 0 to 2');
  });

  it('describes a cached layer with the session it came from and its age, and a failed session with how to resume', async () => {
    // Act
    const built = await cfs(runtime, 'sessions', 'describe', 'built');
    const broke = await cfs(runtime, 'sessions', 'describe', 'broke');
    // Assert
    expect(built.out).toMatch(/ansible {2}cached \(from session nightly-1, 2 h old\) .*\(layer base\)/);
    expect(broke.out).toContain(
      "  resume         to resume, create the session again with the same configuration (a new name, or the same after 'cfs sessions delete broke'): layers 0..1 are reused from the layer cache",
    );
    expect(broke.out).toContain('the run starts at layer 2 (last)');
  });

  it('ends a wait on a failed session with the failure and how to resume', async () => {
    // Act
    const res = await cfs(runtime, 'sessions', 'wait', 'broke');
    // Assert
    expect(res.code).toBe(1);
    expect(res.err).toContain('session broke failed at ansible (layer last, image');
    expect(res.err).toContain('layers 0..1 are reused from the layer cache');
    expect(res.out).toContain('layer 0 base: cached (from session nightly-1, 2 h old)');
  });
});

describe('the progress display of cached layers (issue 19)', () => {
  const view = (steps: NonNullable<SessionView['status']>['steps'], extra: Partial<NonNullable<SessionView['status']>> = {}): SessionView => ({
    name: 's',
    target: { groups: [{ members: [IMG] }] },
    status: { session: { status: 'running', succeeded: 'none' }, layers: [{ name: 'base' }, { name: 'site' }], steps, ...extra },
  });

  it('prints a cached layer once as cached while the run goes on, and again with its origin once the run has ended', () => {
    // Arrange
    const lines: string[] = [];
    const renderer = new PlainRenderer((line) => lines.push(line));
    const now = new Date('2026-11-26T12:00:00Z');
    // Act
    renderer.update(view([{ name: 'ansible', layer: 'base', state: 'cached' }]), now);
    renderer.update(view([{ name: 'ansible', layer: 'base', state: 'cached' }]), now);
    renderer.update(view([{ name: 'ansible', layer: 'base', state: 'cached', cached_from: { session: 'n1', created: '2026-11-26T11:00:00Z' } }]), now);
    // Assert
    expect(lines).toEqual(['layer 0 base: cached', 'layer 0 base: cached (from session n1, 1 h old)']);
    const frame = frameLines(view([{ name: 'ansible', layer: 'base', state: 'cached', cached_from: { session: 'n1', created: '2026-11-26T11:00:00Z' } }]), now, 0, { columns: 120, color: false });
    expect(frame.find((l) => l.includes('layer 0 base'))).toMatch(/^ {2}↺ layer 0 base +\(from session n1, 1 h old\)$/);
  });

  it('offers no resume for a failure at layer 0, for a run the cache did not record, or for a success', () => {
    // Arrange
    const failedAt = (layer: string, keys?: Record<string, string[]>) =>
      view([], { session: { status: 'complete', succeeded: 'false' }, failure: { step: 'ansible', reason: 'x', layer }, ...(keys ? { layer_keys: keys } : {}) });
    // Act
    const first = resumeHint(failedAt('base', { [IMG]: [KEY('a')] }));
    const unrecorded = resumeHint(failedAt('site'));
    const second = resumeHint(failedAt('site', { [IMG]: [KEY('a')] }));
    const success = resumeHint(view([], { session: { status: 'complete', succeeded: 'true' }, layer_keys: { [IMG]: [KEY('a')] } }));
    // Assert
    expect(first).toBeUndefined();
    expect(unrecorded).toBeUndefined();
    expect(success).toBeUndefined();
    expect(second).toContain('layer 0 is reused from the layer cache');
    expect(plainRowLine(sessionRows(view([{ name: 'ansible', layer: 'base', state: 'cached' }])).find((r) => r.key === 'layer:0')!, new Date())).toBe('layer 0 base: cached');
  });
});
