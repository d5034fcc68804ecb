import { utimes } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetentionSweeper } from '../../functions/adapters/local/retention-sweeper.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { readSessionLogs } from '../../functions/core/sessions/logs.ts';
import { sweepOrphanedSessionObjects } from '../../functions/core/sessions/retention.ts';
import { runnerKeys, sessionKeys } from '../../functions/core/workflow/session-keys.ts';
import { cleanup } from '../../functions/steps/cleanup.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';
const OLD = runnerKeys('a'.repeat(32));
const NEW = runnerKeys('b'.repeat(32));

/** A session record of `name` whose workflow execution is `job`. */
function sessionOf(name: string, job: string, status: 'pending' | 'running' = 'pending'): SessionRecord {
  const session = pendingSession(name, { Compute: [A] });
  session.status.session = { ...session.status.session, status, job };
  return session;
}

/** What RenderInventory and the runner leave for a run of `name` (execution `job`) under `runner`'s prefix. */
async function leaveRun(ports: FakeStepPorts, name: string, job: string, runner: ReturnType<typeof runnerKeys>, cloneUrl = 'file:///repo'): Promise<void> {
  const document = JSON.stringify({ ...runDocumentFor(name, runner, { cloneUrl }), job });
  await ports.artifacts.put(runner.runDocument, document);
  await ports.artifacts.put(sessionKeys.runDocument(name), document);
  await ports.artifacts.put(`${runner.logsPrefix}0-base.log`, `the log of ${job}\n`);
  await ports.artifacts.put(runner.outcome, '{"status":"failed"}');
}

describe('the clean-up of a deleted session', () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  it('removes its documents, logs and runner prefix and writes nothing back, not even the redacted run document', async () => {
    // Arrange: a run whose clone URL carries credentials (the live clean-up rewrites such a document redacted).
    await leaveRun(ports, 's', 'job-1', OLD, 'https://user:secret@git.example/site.git');
    const removedWorkspaces: string[] = [];
    // Act: the record is gone (deleted while it ran); the execution's clean-up runs after its runner stopped.
    await cleanup({ artifacts: ports.artifacts, sessions: ports.sessions, workspaces: { remove: async (s) => void removedWorkspaces.push(s) } }, { session: 's', job: 'job-1' });
    // Assert
    expect(await ports.artifacts.list('sessions/')).toEqual([]);
    expect(await ports.artifacts.list('runner/')).toEqual([]);
    expect(removedWorkspaces).toEqual(['s']);
  });

  it("leaves a newer session of the same name its own document, and removes the deleted run's when the newer one has none yet", async () => {
    // Arrange: 's' (job-1) was deleted while it ran and created again (job-2), which has already written its run document.
    await leaveRun(ports, 's', 'job-1', OLD);
    await leaveRun(ports, 's', 'job-2', NEW);
    await ports.sessions.create(sessionOf('s', 'job-2', 'running'));
    // Act
    await cleanup({ artifacts: ports.artifacts, sessions: ports.sessions }, { session: 's', job: 'job-1' });
    // Assert: the newer run's objects are all there.
    expect(await ports.artifacts.list(NEW.prefix)).toEqual([NEW.logsPrefix + '0-base.log', NEW.outcome, NEW.runDocument].sort());
    expect(await ports.artifacts.head(sessionKeys.runDocument('s'))).toBeDefined();

    // Arrange: the same, but the newer session still waits for its images (no run document of its own).
    await ports.artifacts.deletePrefix('sessions/');
    await ports.artifacts.deletePrefix('runner/');
    await leaveRun(ports, 's', 'job-1', OLD);
    // Act
    await cleanup({ artifacts: ports.artifacts, sessions: ports.sessions }, { session: 's', job: 'job-1' });
    // Assert
    expect(await ports.artifacts.list('sessions/')).toEqual([]);
    expect(await ports.artifacts.list('runner/')).toEqual([]);
  });

  it('keeps the documents and logs of a session that still exists under that execution (the Cleanup step of a live run)', async () => {
    // Arrange
    await leaveRun(ports, 's', 'job-1', OLD);
    await ports.sessions.create(sessionOf('s', 'job-1', 'running'));
    // Act
    await cleanup({ artifacts: ports.artifacts, sessions: ports.sessions }, { session: 's', job: 'job-1' });
    // Assert: only the runner's copy of the run document goes.
    expect(await ports.artifacts.list(OLD.prefix)).toEqual([OLD.logsPrefix + '0-base.log', OLD.outcome].sort());
    expect(await ports.artifacts.head(sessionKeys.runDocument('s'))).toBeDefined();
  });
});

describe("a new session's logs", () => {
  let ports: FakeStepPorts;
  beforeEach(() => {
    ports = fakeStepPorts();
  });
  afterEach(() => ports.dispose());

  it('never show the logs of an earlier session of the same name whose documents are still there', async () => {
    // Arrange: the earlier 's' (job-1) left its run document and log; the new 's' (job-2) waits for its images.
    await leaveRun(ports, 's', 'job-1', OLD);
    await ports.sessions.create(sessionOf('s', 'job-2'));
    const earlier = sessionOf('t', 'job-1', 'running');
    await ports.sessions.create(earlier);
    await leaveRun(ports, 't', 'job-1', runnerKeys('c'.repeat(32)));
    // Act
    const fresh = await readSessionLogs(ports, 's');
    const own = await readSessionLogs(ports, 't');
    // Assert
    expect(fresh.text).toBe('');
    expect(fresh.layers[0]!.log_key).not.toContain(OLD.prefix);
    expect(own.text).toBe('the log of job-1\n');
  });
});

describe('the sweep of orphaned session objects', () => {
  let ports: FakeStepPorts;
  let workDir: string;
  beforeEach(() => {
    ports = fakeStepPorts();
    workDir = mkdtempSync(join(tmpdir(), 'cfs-orphans-'));
  });
  afterEach(() => {
    ports.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  /** Sets every object of `name` (its documents and its runner's) to `at`. */
  async function age(name: string, runner: ReturnType<typeof runnerKeys>, at: Date): Promise<void> {
    const store = ports.artifacts as unknown as { pathOf(key: string): string };
    for (const key of [...(await ports.artifacts.list(`sessions/${name}/`)), ...(await ports.artifacts.list(runner.prefix))]) await utimes(store.pathOf(key), at, at);
  }

  it('removes the documents and runner prefix of a session without a record once they are older than the grace period', async () => {
    // Arrange: 'gone' has no record and was written two hours ago; 'fresh' has none and was written now;
    // 'live' has a record; 'busy' has none but the engine still cleans up after it.
    const now = new Date();
    const twoHoursAgo = new Date(now.getTime() - 2 * 3600_000);
    const runners = { gone: OLD, fresh: NEW, live: runnerKeys('c'.repeat(32)), busy: runnerKeys('d'.repeat(32)) };
    for (const [name, runner] of Object.entries(runners)) await leaveRun(ports, name, `job-${name}`, runner);
    for (const name of ['gone', 'live', 'busy'] as const) await age(name, runners[name], twoHoursAgo);
    await ports.sessions.create(sessionOf('live', 'job-live'));
    // Act
    const removed = await sweepOrphanedSessionObjects(ports, now, 3600, new Set(['busy']));
    // Assert
    expect(removed).toEqual(['gone']);
    expect(await ports.artifacts.list('sessions/gone/')).toEqual([]);
    expect(await ports.artifacts.list(OLD.prefix)).toEqual([]);
    for (const name of ['fresh', 'live', 'busy'] as const) expect(await ports.artifacts.list(runners[name].prefix)).not.toEqual([]);
    expect((await ports.artifacts.list('sessions/')).map((key) => key.split('/')[1])).toEqual(['busy', 'fresh', 'live']);
  });

  it('runs with each sweep of the embedded server and reports what it removed', async () => {
    // Arrange
    await leaveRun(ports, 'gone', 'job-1', OLD);
    await age('gone', OLD, new Date(Date.now() - 2 * 3600_000));
    const sweeper = new RetentionSweeper({ ...ports, clock: { now: () => new Date() }, settings: ports.settings, workDir, busySessions: () => new Set(), log: () => undefined });
    // Act
    const swept = await sweeper.sweep();
    // Assert
    expect(swept.orphans).toEqual(['gone']);
    expect(await ports.artifacts.list('sessions/')).toEqual([]);
  });
});
