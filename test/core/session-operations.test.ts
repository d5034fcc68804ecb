import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { endHold, isHeld, markHoldReleased, releaseDebugHold, workflowEnded } from '../../functions/core/sessions/debug-hold.ts';
import { expiresAt, isExpired, sweepExpiredSessions } from '../../functions/core/sessions/retention.ts';
import { deleteSession } from '../../functions/core/sessions/session-use-cases.ts';
import { applyLayerProgress } from '../../functions/core/workflow/layer-steps.ts';
import { redactCloneUrl, redactUrlsInText } from '../../functions/core/workflow/redact.ts';
import { runnerKeys, sessionKeys } from '../../functions/core/workflow/session-keys.ts';
import { MemorySessions } from '../helpers/cfs-fakes.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const DAY = 86_400;

function completed(name: string, completion: string, extra: Partial<SessionRecord['status']> = {}): SessionRecord {
  const session = pendingSession(name, { Compute: [A] });
  session.status = {
    ...session.status,
    session: { status: 'complete', succeeded: 'true', start_time: '2026-11-01T09:00:00Z', completion_time: completion },
    ...extra,
  };
  return session;
}

const hold = (until: string, released_at?: string) => ({
  until,
  ...(released_at ? { released_at } : {}),
  workspace: '/w',
  inventory: '/w/inventory.yaml',
  images: [{ image_id: A, root: `/w/images/${A}`, enter: `chroot /w/images/${A} /bin/sh` }],
  layers: [{ index: 0, name: 'base', directory: '/w/layers/0', command: 'ansible-playbook ...' }],
});

describe('retention', () => {
  it('expires a session completed longer ago than the TTL, not one held for debugging or still running', () => {
    // Arrange
    const now = new Date('2026-11-10T10:00:00Z');
    const old = completed('old', '2026-11-02T10:00:00Z');
    const recent = completed('recent', '2026-11-09T10:00:00Z');
    const held = completed('held', '2026-11-02T10:00:00Z', { debug: hold('2026-11-11T00:00:00Z') });
    const running = pendingSession('running', { Compute: [A] });
    // Act / Assert
    expect(isExpired(old, now, 7 * DAY)).toBe(true);
    expect(isExpired(recent, now, 7 * DAY)).toBe(false);
    expect(isExpired(held, now, 7 * DAY)).toBe(false);
    expect(isExpired(running, now, 7 * DAY)).toBe(false);
    expect(isExpired(old, now, 0)).toBe(false);
  });

  it('sets the TTL attribute from completion, never before a debug hold ends, and none when sessions are kept', () => {
    // Arrange
    const completion = '2026-11-10T10:00:00Z';
    const epoch = Date.parse(completion) / 1000;
    // Act / Assert
    expect(expiresAt(completion, DAY)).toBe(epoch + DAY);
    expect(expiresAt(completion, 60, '2026-11-10T11:00:00Z')).toBe(epoch + 3600);
    expect(expiresAt(completion, 0)).toBeUndefined();
  });

  describe('the sweep', () => {
    let ports: FakeStepPorts;
    let sessions: MemorySessions;
    beforeEach(() => {
      ports = fakeStepPorts();
      sessions = new MemorySessions();
    });
    afterEach(() => ports.dispose());

    it('removes expired sessions with everything under sessions/<name>/ and keeps the rest and other objects', async () => {
      // Arrange
      await sessions.create(completed('old', '2026-11-02T10:00:00Z'));
      await sessions.create(completed('recent', '2026-11-09T10:00:00Z'));
      await ports.artifacts.put('sessions/old/logs/0-base.log', 'log');
      await ports.artifacts.put('sessions/old/runner-outcome.json', '{}');
      await ports.artifacts.put('sessions/recent/logs/0-base.log', 'log');
      await ports.artifacts.put('boot-images/result/rootfs', 'image bytes');
      // The old session's runner wrote under its prefix, which its run document names.
      const runner = runnerKeys('d'.repeat(32));
      await ports.artifacts.put(sessionKeys.runDocument('old'), JSON.stringify(runDocumentFor('old', runner)));
      await ports.artifacts.put(`${runner.logsPrefix}0-base.log`, 'log');
      await ports.artifacts.put(runner.outcome, '{}');
      // Act
      const removed = await sweepExpiredSessions({ sessions, artifacts: ports.artifacts }, new Date('2026-11-10T10:00:00Z'), 7 * DAY);
      // Assert
      expect(removed).toEqual(['old']);
      expect(await sessions.get('old')).toBeUndefined();
      expect(await ports.artifacts.list('sessions/old/')).toEqual([]);
      expect(await ports.artifacts.list(runner.prefix)).toEqual([]);
      expect(await ports.artifacts.list('sessions/recent/')).toEqual(['sessions/recent/logs/0-base.log']);
      expect(await ports.artifacts.head('boot-images/result/rootfs')).toBeDefined();
    });
  });
});

describe('debug holds', () => {
  it('is held until released', () => {
    // Arrange
    const session = completed('s', '2026-11-10T10:00:00Z', { debug: hold('2026-11-10T11:00:00Z') });
    // Act
    const released = markHoldReleased(session, '2026-11-10T10:30:00Z');
    // Assert
    expect(isHeld(session)).toBe(true);
    expect(isHeld(released)).toBe(false);
    expect(released.status.debug?.released_at).toBe('2026-11-10T10:30:00Z');
  });

  it('releases through the workflow, and refuses a session that holds nothing (409)', async () => {
    // Arrange
    const sessions = new MemorySessions();
    const released: string[] = [];
    const workflow = {
      start: async () => 'job',
      stop: async () => undefined,
      releaseHold: async (name: string) => {
        released.push(name);
        await sessions.update(name, (s) => markHoldReleased(s, '2026-11-10T10:30:00Z'));
      },
    };
    await sessions.create(completed('held', '2026-11-10T10:00:00Z', { debug: hold('2026-11-10T11:00:00Z') }));
    await sessions.create(completed('plain', '2026-11-10T10:00:00Z'));
    // Act
    const answer = await releaseDebugHold({ sessions, workflow }, 'held');
    const again = releaseDebugHold({ sessions, workflow }, 'held');
    const plain = releaseDebugHold({ sessions, workflow }, 'plain');
    // Assert
    expect(released).toEqual(['held']);
    expect(answer.status.debug?.released_at).toBe('2026-11-10T10:30:00Z');
    await Promise.all([
      expect(again).rejects.toMatchObject({ name: 'InvalidStateError' }),
      expect(plain).rejects.toMatchObject({ name: 'InvalidStateError' }),
    ]);
  });

  it('is released when its session is deleted', async () => {
    // Arrange
    const sessions = new MemorySessions();
    const released: string[] = [];
    const workflow = { start: async () => 'job', stop: async () => undefined, releaseHold: async (name: string) => void released.push(name) };
    await sessions.create(completed('held', '2026-11-10T10:00:00Z', { debug: hold('2026-11-10T11:00:00Z') }));
    // Act
    await deleteSession({ sessions, workflow }, 'held');
    // Assert
    expect(released).toEqual(['held']);
    expect(await sessions.get('held')).toBeUndefined();
  });

  it('completes a held session as failed when its hold ends, with its completion time and TTL from then', () => {
    // Arrange: held as failSession leaves it, running with succeeded none and its failure recorded.
    const session = heldRunning('s', hold('2026-11-10T11:00:00Z'));
    // Act
    const ended = endHold(session, '2026-11-10T10:30:00Z', DAY);
    const forever = endHold(session, '2026-11-10T10:30:00Z', 0);
    // Assert
    expect(isHeld(session)).toBe(true);
    expect(workflowEnded(session)).toBe(true);
    expect(ended.status.session).toMatchObject({ status: 'complete', succeeded: 'false', completion_time: '2026-11-10T10:30:00Z' });
    expect(ended.status.debug?.released_at).toBe('2026-11-10T10:30:00Z');
    expect(ended.status.failure).toEqual(session.status.failure);
    expect(ended.expires_at).toBe(Date.parse('2026-11-10T10:30:00Z') / 1000 + DAY);
    expect(forever.expires_at).toBeUndefined();
    expect(endHold(ended, '2026-11-10T10:45:00Z', DAY)).toEqual(ended);
  });

  it('is not swept by retention while it is held, and its TTL counts from the hold end', () => {
    // Arrange: started 20 days ago, held now; then the same session after a hold that ended 2 days ago.
    const now = new Date('2026-11-21T10:00:00Z');
    const held = heldRunning('s', hold('2026-11-21T11:00:00Z'));
    const ended = endHold(held, '2026-11-19T10:00:00Z', 7 * DAY);
    // Act
    const heldExpired = isExpired(held, now, DAY);
    const endedWithinTtl = isExpired(ended, now, 7 * DAY);
    const endedPastTtl = isExpired(ended, now, DAY);
    // Assert
    expect([heldExpired, endedWithinTtl, endedPastTtl]).toEqual([false, false, true]);
  });

  it('is released, not stopped, when its running session is deleted, and its objects go with it', async () => {
    // Arrange
    const ports = fakeStepPorts();
    const sessions = new MemorySessions();
    const stopped: string[] = [];
    const released: string[] = [];
    const workflow = { start: async () => 'job', stop: async (name: string) => void stopped.push(name), releaseHold: async (name: string) => void released.push(name) };
    await sessions.create(heldRunning('held', hold('2026-11-10T11:00:00Z')));
    await ports.artifacts.put('sessions/held/logs/0-base.log', 'log');
    // Act
    await deleteSession({ sessions, workflow, artifacts: ports.artifacts }, 'held');
    // Assert
    expect(stopped).toEqual([]);
    expect(released).toEqual(['held']);
    expect(await ports.artifacts.list('sessions/held/')).toEqual([]);
    ports.dispose();
  });
});

/** A session failed in a layer and held for debugging: `running`, `succeeded: none`, its failure recorded. */
function heldRunning(name: string, debug: ReturnType<typeof hold>): SessionRecord {
  const session = pendingSession(name, { Compute: [A] }, { debug_on_failure: true });
  session.status = {
    ...session.status,
    session: { status: 'running', succeeded: 'none', start_time: '2026-11-01T09:00:00Z', job: 'job-1' },
    failure: { step: 'ansible', layer: 'base', reason: 'layer 0 failed' },
    debug,
  };
  return session;
}

describe('deleting an ended session', () => {
  it("removes its documents and its runner's prefix, and leaves a running session's to its workflow", async () => {
    // Arrange
    const ports = fakeStepPorts();
    const sessions = new MemorySessions();
    const workflow = { start: async () => 'job', stop: async () => undefined };
    const ended = runnerKeys('a'.repeat(32));
    const running = runnerKeys('b'.repeat(32));
    await sessions.create(completed('ended', '2026-11-10T10:00:00Z'));
    const active = pendingSession('active', { Compute: [A] });
    active.status.session = { ...active.status.session, status: 'running', job: 'job-active' };
    await sessions.create(active);
    for (const [name, runner] of [['ended', ended], ['active', running]] as const) {
      await ports.artifacts.put(sessionKeys.runDocument(name), JSON.stringify(runDocumentFor(name, runner)));
      await ports.artifacts.put(`${runner.logsPrefix}0-base.log`, 'log');
    }
    // Act
    await deleteSession({ sessions, workflow, artifacts: ports.artifacts }, 'ended');
    await deleteSession({ sessions, workflow, artifacts: ports.artifacts }, 'active');
    // Assert
    expect(await ports.artifacts.list('sessions/ended/')).toEqual([]);
    expect(await ports.artifacts.list(ended.prefix)).toEqual([]);
    expect(await ports.artifacts.list(running.prefix)).toEqual([`${running.logsPrefix}0-base.log`]);
    ports.dispose();
  });
});

describe('layer progress in status.steps', () => {
  it('adds an ansible entry per started layer, updates it, and never moves an ended one back', () => {
    // Arrange
    const session = pendingSession('s', { Compute: [A] });
    session.status.steps = [{ name: 'ansible', state: 'running', start_time: 't0' }];
    // Act
    const running = applyLayerProgress(session, [
      { index: 0, name: 'base', state: 'running', start_time: 't1' },
      { index: 1, name: 'next', state: 'pending' },
    ]);
    const ended = applyLayerProgress(running, [{ index: 0, name: 'base', state: 'succeeded', start_time: 't1', end_time: 't2' }]);
    const stale = applyLayerProgress(ended, [{ index: 0, name: 'base', state: 'running', start_time: 't1' }]);
    // Assert
    expect(running.status.steps).toEqual([
      { name: 'ansible', state: 'running', start_time: 't0' },
      { name: 'ansible', layer: 'base', state: 'running', start_time: 't1' },
    ]);
    expect(ended.status.steps?.[1]).toEqual({ name: 'ansible', layer: 'base', state: 'succeeded', start_time: 't1', end_time: 't2' });
    expect(stale).toBe(ended);
  });
});

describe('secrets in clone URLs', () => {
  it('are removed from URLs and from free text that quotes them', () => {
    // Arrange
    const url = 'https://user:s3cret@git.example/repo.git';
    const message = "fatal: unable to access 'https://user:s3cret@git.example/repo.git/': 403; also http://token@host/x";
    // Act
    const text = redactUrlsInText(message);
    // Assert
    expect(redactCloneUrl(url)).toBe('https://git.example/repo.git');
    expect(text).toBe("fatal: unable to access 'https://git.example/repo.git/': 403; also http://host/x");
    expect(text).not.toContain('s3cret');
  });
});
