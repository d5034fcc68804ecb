import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionDebugHold } from '../../functions/core/model/session.ts';
import { sessionRows } from '../../functions/cli/progress/session-steps.ts';
import type { EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { cfs, startServer, tempDataDir } from './cli-harness.ts';

const IMG = '3fa85f64-5717-4562-b3fc-2c963f66afa6';

const hold = (name: string): SessionDebugHold => ({
  until: '2026-12-06T21:00:00.000Z',
  workspace: `/data/work/workspaces/${name}`,
  inventory: `/data/work/workspaces/${name}/inventory/inventory.yaml`,
  images: [{ image_id: IMG, root: `/data/work/workspaces/${name}/images/${IMG}`, enter: `cfs sessions debug ${name} --enter ${IMG}` }],
  layers: [{ index: 0, name: 'base', directory: `/data/work/workspaces/${name}/layers/0`, command: `cfs sessions debug ${name} --rerun 0` }],
});

describe('cfs sessions wait on a session held for debugging', () => {
  let data: ReturnType<typeof tempDataDir>;
  let runtime: EmbeddedRuntime;
  let repo: TempRepo;

  beforeAll(async () => {
    data = tempDataDir();
    // The fake workflow leaves sessions pending: the test moves them as the engine would.
    ({ runtime } = await startServer(data.dir));
    repo = makeTempRepo();
    repo.commit('main', 'site.yml', '- hosts: all\n  tasks: []\n');
    const file = join(data.dir, 'config.json');
    writeFileSync(file, JSON.stringify({ layers: [{ name: 'base', clone_url: repo.url, playbook: 'site.yml', branch: 'main' }] }));
    expect((await cfs(runtime, 'configurations', 'update', 'base', '--file', file)).code).toBe(0);
  });
  afterAll(async () => {
    await runtime.close();
    data.dispose();
    repo.dispose();
  });

  /** Creates session `name` and records it failed in layer `base` and held, as failSession does: running, succeeded none. */
  async function heldSession(name: string, released = false): Promise<void> {
    expect((await cfs(runtime, 'sessions', 'create', '--name', name, '--configuration-name', 'base', '--target-group', 'Compute', IMG)).code).toBe(0);
    await runtime.ports.sessions.update(name, (s) => ({
      ...s,
      status: {
        ...s.status,
        session: released ? { ...s.status.session, status: 'complete', succeeded: 'false', completion_time: '2026-12-06T21:00:00.000Z' } : { ...s.status.session, status: 'running', succeeded: 'none' },
        steps: [{ name: 'validate', state: 'succeeded', start_time: 't0', end_time: 't0' }, { name: 'ansible', layer: 'base', state: 'failed', start_time: 't1', end_time: 't2' }],
        failure: { step: 'ansible', layer: 'base', image_id: IMG, reason: "layer 0 'base' failed" },
        debug: released ? { ...hold(name), released_at: '2026-12-06T21:00:00.000Z' } : hold(name),
      },
    }));
  }

  it('returns at once with exit 1, printing how it failed, until when it is held and the command that enters it', async () => {
    // Arrange
    await heldSession('held');
    // Act
    const waited = await cfs(runtime, 'sessions', 'wait', 'held', '--timeout', '5');
    // Assert
    expect(waited.code).toBe(1);
    expect(waited.out).toContain("session held failed at ansible (layer base, image 3fa85f64-5717-4562-b3fc-2c963f66afa6): layer 0 'base' failed\n");
    expect(waited.out).toContain('its workspace is held for debugging until 2026-12-06T21:00:00.000Z (the session stays running until then)');
    expect(waited.out).toContain(`\n  cfs sessions debug held --enter ${IMG}\n`);
    expect(waited.out).toContain('  cfs sessions release held');
    expect(waited.err).toBe(`Error: session held failed at ansible (layer base, image ${IMG}): layer 0 'base' failed; held for debugging until 2026-12-06T21:00:00.000Z: cfs sessions debug held --enter ${IMG}\n`);
  });

  it('prints the session as JSON and the enter command in its error line with --format json', async () => {
    // Arrange
    await heldSession('held-json');
    // Act
    const waited = await cfs(runtime, 'sessions', 'wait', 'held-json', '--format', 'json', '--timeout', '5');
    // Assert
    expect(waited.code).toBe(1);
    expect(JSON.parse(waited.out).status.session).toMatchObject({ status: 'running', succeeded: 'none' });
    expect(waited.err).toContain(`cfs sessions debug held-json --enter ${IMG}`);
  });

  it('waits on past a hold that already ended, and fails as any failed session does', async () => {
    // Arrange
    await heldSession('ended', true);
    // Act
    const waited = await cfs(runtime, 'sessions', 'wait', 'ended', '--timeout', '5');
    // Assert
    expect(waited.code).toBe(1);
    expect(waited.out).not.toContain('--enter');
    expect(waited.err).toBe(`Error: session ended failed at ansible (layer base, image ${IMG}): layer 0 'base' failed\n`);
  });

  it('shows the steps that never ran of a held session as skipped, not pending', () => {
    // Act
    const rows = sessionRows({
      name: 'held',
      target: { groups: [{ members: [IMG] }] },
      status: { session: { status: 'running', succeeded: 'none' }, layers: [{ name: 'base' }], steps: [{ name: 'ansible', layer: 'base', state: 'failed' }], debug: { until: 'x', images: [] } },
    });
    // Assert
    expect(rows.find((r) => r.label.startsWith('package'))?.state).toBe('skipped');
    expect(rows.find((r) => r.label === 'layer 0 base')?.state).toBe('failed');
  });
});
