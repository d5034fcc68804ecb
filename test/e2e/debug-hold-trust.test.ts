import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { cfsBin, ensureBuilt } from '../cli/cli-harness.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';

/**
 * Nothing a failed layer wrote into its workspace is run by the debug hold's commands: a layer
 * rewrites every file it can reach (from the controller and from inside the image root) into a
 * script that writes a canary outside every workspace, then fails with debug_on_failure; the
 * hold's printed instructions, its enter and its rerun, and its release leave the canary unmade.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'cfs-hold-trust-'));
// Outside every workspace and the data directory: only a process running as the host's root outside the sandbox can write here.
const canaryDir = mkdtempSync(join(tmpdir(), 'cfs-hold-canary-'));
const canary = join(canaryDir, 'pwned');
const repo: TempRepo = makeTempRepo();
let runtime: EmbeddedRuntime;
let imageId: string;

/** The server's API token when it keeps one in the data directory (sent as the CLI would). */
function authorization(): Record<string, string> {
  const file = join(dataDir, 'api-token');
  return existsSync(file) ? { Authorization: `Bearer ${readFileSync(file, 'utf8').trim()}` } : {};
}

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${runtime.url}${path}`, {
    method,
    headers: { ...authorization(), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

const cli = (...argv: string[]) => cfsBin({ CFS_API_URL: runtime.url, CFS_DATA_DIR: dataDir }, ...argv);
const session = async (name: string) => (await api<SessionRecord>('GET', `/apis/cfs/v3/sessions/${name}`)).body;

async function complete(name: string): Promise<SessionRecord> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const record = await session(name);
    // A failed session held for debugging stays `running` until its hold ends.
    if (record.status.session.status === 'complete' || (record.status.debug && !record.status.debug.released_at)) return record;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${name} to complete`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Commits `playbook` as `<name>.yml`, runs it as session `name` with debug_on_failure, and returns the record once complete or held. */
async function sessionWithHold(name: string, playbook: string): Promise<SessionRecord> {
  const commit = repo.commit('main', `${name}.yml`, playbook);
  expect((await api('PUT', `/apis/cfs/v3/configurations/${name}`, { layers: [{ name, clone_url: repo.url, commit, playbook: `${name}.yml` }] })).status).toBe(200);
  const created = await api('POST', '/apis/cfs/v3/sessions', {
    name,
    configuration_name: name,
    target: { definition: 'image', groups: [{ name: 'Compute', members: [imageId] }] },
    debug_on_failure: true,
  });
  expect(created.status).toBe(201);
  return complete(name);
}

/** Files under `dir` (not following symlinks) whose text holds `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...filesHolding(path, needle));
    else if (entry.isFile()) {
      try {
        if (readFileSync(path).includes(needle)) found.push(path);
      } catch {
        // unreadable: not the layer's
      }
    }
  }
  return found;
}

beforeAll(async () => {
  ensureBuilt();
  runtime = await startEmbeddedRuntime({ dataDir, port: 0, workflow: { debugWaitSeconds: 600 } });
  const built = await cli('images', 'build-sample', '--name', 'trust-base', '--format', 'json');
  expect(built.code, built.err).toBe(0);
  imageId = (JSON.parse(built.out) as { id: string }).id;
});

afterAll(async () => {
  await runtime?.close();
  repo.dispose();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(canaryDir, { recursive: true, force: true });
});

describe('a debug hold after a hostile layer', () => {
  it("enters the kept root and reruns the layer in the layer's sandbox, built from the run document (the control: the commands do work)", async () => {
    // Arrange
    await sessionWithHold('broken', ['- hosts: cfs_image', '  gather_facts: false', '  tasks:', '    - copy: { dest: /etc/debug-me, content: "kept\\n" }', '    - command: /bin/false', ''].join('\n'));

    // Act
    const entered = await cli('sessions', 'debug', 'broken', '--enter', imageId, '--', '-c', 'cat /etc/debug-me; ls /proc/self >/dev/null && echo proc-mounted');
    const rerun = await cli('sessions', 'debug', 'broken', '--rerun', '0');
    const unknown = await cli('sessions', 'debug', 'broken', '--rerun', '7');
    const released = await cli('sessions', 'release', 'broken');

    // Assert
    expect(entered.out, entered.err).toBe('kept\nproc-mounted\n');
    expect(entered.code).toBe(0);
    expect(rerun.code, rerun.err + rerun.out).toBe(2);
    expect(rerun.out).toContain('/bin/false');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('session broken has no layer 7 (it has 0)');
    expect(released.code).toBe(0);
  });

  it('runs nothing the failed layer wrote: the printed instructions, enter, rerun and release leave a canary outside every workspace unmade', async () => {
    // Arrange: every file the layer reaches becomes a script that makes the canary; then the layer fails.
    const payload = `#!/bin/sh\\necho pwned > ${canary}\\n`;
    const rewrite = `find "$W" -xdev -type f 2>/dev/null | while IFS= read -r f; do printf '${payload}' > "$f" 2>/dev/null; chmod 755 "$f" 2>/dev/null; done; true`;
    const playbook = [
      '- hosts: cfs_image',
      '  gather_facts: false',
      '  tasks:',
      '    - name: rewrite the workspace from the controller',
      '      delegate_to: localhost',
      '      ignore_errors: true',
      `      shell: W="{{ playbook_dir }}/../.."; ${rewrite}`,
      '    - name: rewrite the image root from inside it',
      '      ignore_errors: true',
      '      ignore_unreachable: true',
      `      shell: W=/; ${rewrite}`,
      '    - fail: { msg: "failing on purpose, after the rewrite" }',
      '',
    ].join('\n');
    const failed = await sessionWithHold('hostile', playbook);
    const hold = failed.status.debug!;
    const rewritten = filesHolding(hold.workspace, canary);

    // Act
    const instructions = await cli('sessions', 'debug', 'hostile');
    const entered = await cli('sessions', 'debug', 'hostile', '--enter', imageId, '--', '-c', 'echo entered');
    const rerun = await cli('sessions', 'debug', 'hostile', '--rerun', '0');
    const madeBeforeRelease = existsSync(canary);
    const released = await cli('sessions', 'release', 'hostile');
    await runtime.engine.idle();

    // Assert
    expect(failed.status.failure).toMatchObject({ step: 'ansible', layer: 'hostile' });
    expect(rewritten.length).toBeGreaterThan(0);
    expect(instructions.code).toBe(0);
    expect(instructions.out).toContain(`cfs sessions debug hostile --enter ${imageId}`);
    expect(instructions.out).toContain('cfs sessions debug hostile --rerun 0');
    expect(instructions.out).not.toContain(hold.workspace + '/sandbox');
    expect(JSON.stringify(hold)).not.toMatch(/\.sh\b/);
    expect(entered.err + entered.out).not.toContain('pwned');
    expect(rerun.code).not.toBe(0);
    expect(madeBeforeRelease).toBe(false);
    expect(released.code).toBe(0);
    expect(existsSync(hold.workspace)).toBe(false);
    expect(existsSync(canary)).toBe(false);
  });
});
