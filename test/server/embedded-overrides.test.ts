import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { FakeWorkflow } from '../helpers/cfs-fakes.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The embedded runtime's test hook replaces named ports only: a fake workflow starter changes what
 * the API calls, never the start-up, so a previous process's running session is still failed and
 * the retention sweep still removes an orphaned workspace.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'cfs-overrides-'));

const interrupted: SessionRecord = {
  name: 'interrupted',
  configuration: { name: 'c', limit: '' },
  ansible: { config: '', limit: '', verbosity: 0, passthrough: '' },
  target: { definition: 'image', groups: [], image_map: [] },
  tags: {},
  debug_on_failure: false,
  status: { session: { status: 'running', succeeded: 'none', start_time: '2026-01-01T00:00:00Z' }, artifacts: [], layers: [] },
};

describe('the embedded runtime started with overridden ports', () => {
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('still recovers the previous process sessions and sweeps orphaned workspaces', async () => {
    // Arrange: a previous process left a session running and an empty workspace no session owns.
    const previous = await startEmbeddedRuntime({ dataDir, port: 0, overrides: { workflow: new FakeWorkflow() } });
    await previous.ports.sessions.create(interrupted);
    await previous.close();
    const orphan = join(dataDir, 'work', 'workspaces', 'orphan');
    mkdirSync(orphan, { recursive: true });
    const workflow = new FakeWorkflow();
    // Act
    const runtime = await startEmbeddedRuntime({ dataDir, port: 0, overrides: { workflow } });
    try {
      const recovered = await runtime.ports.sessions.get('interrupted');
      await waitFor(async () => (existsSync(orphan) ? undefined : true), 10_000, 'the orphaned workspace swept').catch(() => undefined);
      // Assert
      expect(runtime.ports.workflow).toBe(workflow);
      expect(recovered?.status.session).toMatchObject({ status: 'complete', succeeded: 'false' });
      expect(existsSync(orphan)).toBe(false);
    } finally {
      await runtime.close();
    }
  });
});
