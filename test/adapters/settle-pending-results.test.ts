import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const R1 = '44444444-4444-4444-8444-444444444444';
const R2 = '55555555-5555-4555-8555-555555555555';

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cfs-settle-'));
});
afterEach(async () => rm(dataDir, { recursive: true, force: true }));

describe('the embedded runtime at start', () => {
  it('shows the results of a session that committed before the process died, and removes those of a session that is gone', async () => {
    // Arrange: what a process killed between RecordArtifacts' completion write and its showing of the results leaves.
    const before = await startEmbeddedRuntime({ dataDir, port: 0 });
    const done = pendingSession('done', { Compute: [A] });
    done.status.session = { status: 'complete', succeeded: 'true', start_time: '2026-11-26T10:00:00Z', completion_time: '2026-11-26T10:05:00Z' };
    done.status.artifacts = [{ image_id: A, result_id: R1, type: 'ims_customized_image' }];
    await before.ports.sessions.create(done);
    const result = (id: string, session: string) => ({ id, name: `${id}-result`, created: 't', arch: 'x86_64' as const, metadata: { cfs_session: session }, pending_session: session });
    await before.ports.images.create(result(R1, 'done'));
    await before.ports.images.create(result(R2, 'deleted-meanwhile'));
    await before.ports.artifacts.put(`boot-images/${R2}/rootfs`, 'never shown');
    await before.close();
    // Act
    const after = await startEmbeddedRuntime({ dataDir, port: 0 });
    try {
      // Assert
      expect(await after.ports.images.get(R1)).toMatchObject({ id: R1, rootfs_registered: expect.any(String) });
      expect((await after.ports.images.get(R1))?.pending_session).toBeUndefined();
      expect(await after.ports.images.get(R2, { includePending: true })).toBeUndefined();
      expect(await after.ports.artifacts.list(`boot-images/${R2}/`)).toEqual([]);
    } finally {
      await after.close();
    }
  });
});
