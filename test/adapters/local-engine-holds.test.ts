import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalWorkflowEngine } from '../../functions/adapters/local/local-workflow-engine.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { heldRun } from '../../functions/core/sessions/debug-hold.ts';
import { runnerKeys, sessionKeys } from '../../functions/core/workflow/session-keys.ts';
import { WORKSPACE_MARKER } from '../../functions/runner/workspace.ts';
import { cleanup } from '../../functions/steps/cleanup.ts';
import { fakeStepPorts, type FakeStepPorts } from '../helpers/in-memory-ports.ts';
import { runDocumentFor } from '../helpers/run-document.ts';
import { pendingSession } from '../helpers/session-fixtures.ts';

const A = '11111111-1111-4111-8111-111111111111';

describe('debug holds across an engine restart', () => {
  let ports: FakeStepPorts;
  let workDir: string;
  let engine: LocalWorkflowEngine;

  beforeEach(() => {
    ports = fakeStepPorts();
    workDir = mkdtempSync(join(tmpdir(), 'cfs-engine-holds-'));
    engine = new LocalWorkflowEngine({ ports, storeDir: join(workDir, 'store'), workDir, maxConcurrentRuns: 1, events: { subscribe: () => undefined } });
  });
  afterEach(async () => {
    await engine.close();
    ports.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  /** A failed session holding a (marked) workspace until `until`. */
  async function heldSession(name: string, until: string): Promise<string> {
    const workspace = join(workDir, 'workspaces', name);
    mkdirSync(join(workspace, 'images', A), { recursive: true });
    writeFileSync(join(workspace, WORKSPACE_MARKER), '');
    const session: SessionRecord = pendingSession(name, { Compute: [A] }, { debug_on_failure: true });
    // As failSession leaves it: running, succeeded none, its failure recorded.
    session.status.session = { status: 'running', succeeded: 'none', start_time: '2026-11-26T09:00:00Z', job: `local:${name}:1` };
    session.status.failure = { step: 'ansible', layer: 'site', reason: 'layer 0 failed' };
    session.status.debug = { until, workspace, inventory: join(workspace, 'inventory.yaml'), images: [], layers: [] };
    await ports.sessionTable.create(session);
    return workspace;
  }

  it('releases a hold that ended while the server was down and re-arms one that has not, never failing or killing a held session as an interrupted run', async () => {
    // Arrange: the clock says 10:00.
    const expired = await heldSession('expired', '2026-11-26T09:59:00Z');
    const current = await heldSession('current', '2026-11-26T11:00:00Z');
    const killed: string[] = [];
    // Act
    await engine.recover(async (workspace) => void killed.push(workspace));
    await engine.idle();
    // Assert
    const ended = await ports.sessions.get('expired');
    expect(ended?.status.debug?.released_at).toBe('2026-11-26T10:00:00.000Z');
    expect(ended?.status.session).toMatchObject({ status: 'complete', succeeded: 'false', completion_time: '2026-11-26T10:00:00.000Z' });
    expect(ended?.status.failure?.reason).toBe('layer 0 failed');
    expect(existsSync(expired)).toBe(false);
    const held = await ports.sessions.get('current');
    expect(held?.status.debug?.released_at).toBeUndefined();
    expect(held?.status.session).toMatchObject({ status: 'running', succeeded: 'none' });
    expect(held?.status.failure?.reason).toBe('layer 0 failed');
    expect(existsSync(current)).toBe(true);
    expect(engine.holdArmed('current')).toBe(true);
    expect(killed).toEqual([]);
  });

  it('announces the session completed (failed) when its hold ends, not before', async () => {
    // Arrange
    await heldSession('announced', '2026-11-26T11:00:00Z');
    await engine.recover(async () => undefined);
    const before = ports.published.filter((e) => e.detailType === 'Session Completed').length;
    // Act
    await engine.releaseHold('announced');
    // Assert
    expect(before).toBe(0);
    expect(ports.published.filter((e) => e.detailType === 'Session Completed')).toEqual([
      expect.objectContaining({ detail: expect.objectContaining({ name: 'announced', succeeded: 'false', failure: expect.objectContaining({ layer: 'site' }) }) }),
    ]);
  });

  it('releases a hold on demand, and leaves holds recorded (not released) when it closes', async () => {
    // Arrange
    const released = await heldSession('released', '2026-11-26T11:00:00Z');
    const kept = await heldSession('kept', '2026-11-26T11:00:00Z');
    await engine.recover(async () => undefined);
    // Act
    await engine.releaseHold('released');
    await engine.close();
    // Assert
    expect(existsSync(released)).toBe(false);
    expect((await ports.sessions.get('released'))?.status.debug?.released_at).toBeDefined();
    expect(existsSync(kept)).toBe(true);
    expect(engine.holdArmed('kept')).toBe(false);
    expect((await ports.sessions.get('kept'))?.status.debug?.released_at).toBeUndefined();
  });

  it('keeps the run document while a hold lasts, serves the held run from it without clone URLs, and removes it with the workspace on release', async () => {
    // Arrange
    const workspace = await heldSession('kept-doc', '2026-11-26T11:00:00Z');
    const runner = runnerKeys('c'.repeat(32));
    const document = {
      ...runDocumentFor('kept-doc', runner, { image: A, layer: 'site', playbook: 'site.yml', cloneUrl: 'https://deploy:s3cret@git.example/site.git', inventory: { all: { children: { Compute: { hosts: { [A]: {} } } } } } }),
      // Not the defaults: the held run must carry the document's own Ansible settings.
      ansible: { limit: '', verbosity: 1, passthrough: [] },
    };
    await ports.artifacts.put(sessionKeys.runDocument('kept-doc'), JSON.stringify(document));
    await ports.artifacts.put(runner.runDocument, JSON.stringify(document));
    await ports.artifacts.put(`${runner.logsPrefix}0-site.log`, 'the layer log');
    // Act
    await cleanup({ artifacts: ports.artifacts, sessions: ports.sessions, workspaces: { remove: async () => undefined } }, { session: 'kept-doc' });
    const keptAfterCleanup = (await ports.artifacts.head(runner.runDocument)) !== undefined;
    const held = await heldRun(ports, 'kept-doc');
    await engine.releaseHold('kept-doc');
    // Assert
    expect(keptAfterCleanup).toBe(true);
    expect(held).toEqual({ session: 'kept-doc', workspace, images: [{ image_id: A }], layers: [{ index: 0, name: 'site', playbook: 'site.yml' }], ansible: document.ansible, inventory: document.inventory });
    expect(JSON.stringify(held)).not.toContain('s3cret');
    // The hold's end removes the runner's copy; the control plane's names the logs, which stay.
    expect(await ports.artifacts.list(runner.prefix)).toEqual([`${runner.logsPrefix}0-site.log`]);
    expect(await ports.artifacts.head(sessionKeys.runDocument('kept-doc'))).toBeDefined();
    expect(existsSync(workspace)).toBe(false);
    await expect(heldRun(ports, 'kept-doc')).rejects.toThrow(/debug hold ended at/);
  });
});
