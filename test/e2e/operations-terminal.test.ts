import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import { startEmbeddedRuntime, type EmbeddedRuntime } from '../../functions/server/embedded-runtime.ts';
import { BIN, cfsBin, ensureBuilt, REPO_ROOT } from '../cli/cli-harness.ts';
import { makeTempRepo, type TempRepo } from '../helpers/git-repo.ts';
import { bearer, cliEnv } from '../helpers/api-token.ts';

/**
 * The terminal check of `cfs sessions create ... --wait`: under a real pseudo-terminal (tmux,
 * from Debian's packages) the step list is redrawn in place with marks and spinners; with its
 * output piped it prints one plain line per step change and no control characters.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'cfs-tty-'));
const repo: TempRepo = makeTempRepo();
/** A tmux server of this test's own (its own socket), killed at the end. */
const TMUX_SOCKET = `cfs-tty-${process.pid}`;
let runtime: EmbeddedRuntime;
let imageId: string;

const tmux = (...args: string[]) => execFileSync('tmux', ['-L', TMUX_SOCKET, ...args], { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-t', 'cfs');
const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f]/;

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function session(name: string): Promise<SessionRecord | undefined> {
  const response = await fetch(`${runtime.url}/apis/cfs/v3/sessions/${name}`, { headers: bearer(runtime) });
  return response.status === 200 ? ((await response.json()) as SessionRecord) : undefined;
}

async function configuration(name: string, tasks: string[]): Promise<void> {
  const commit = repo.commit('main', `${name}.yml`, ['- hosts: cfs_image', '  gather_facts: false', '  tasks:', ...tasks.map((t) => `    - ${t}`), ''].join('\n'));
  const response = await fetch(`${runtime.url}/apis/cfs/v3/configurations/${name}`, {
    method: 'PUT',
    headers: { ...bearer(runtime), 'Content-Type': 'application/json' },
    body: JSON.stringify({ layers: [{ name, clone_url: repo.url, commit, playbook: `${name}.yml` }] }),
  });
  expect(response.status).toBe(200);
}

/** Runs the real CLI with its output piped (not a terminal). */
function piped(...argv: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...argv], { env: { ...process.env, ...cliEnv(runtime) }, cwd: REPO_ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('close', (code) => resolve({ code, out, err }));
  });
}

const createArgs = (name: string, configurationName: string) => ['sessions', 'create', '--name', name, '--configuration-name', configurationName, '--target-group', 'Compute', imageId, '--wait'];

beforeAll(async () => {
  ensureBuilt();
  runtime = await startEmbeddedRuntime({ dataDir, port: 0 });
  const built = await cfsBin(cliEnv(runtime), 'images', 'build-sample', '--name', 'tty-base', '--format', 'json');
  expect(built.code).toBe(0);
  imageId = (JSON.parse(built.out) as { id: string }).id;
  await configuration('slowish', ['debug: { msg: before }', 'command: sleep 2', 'debug: { msg: after }']);
});

afterAll(async () => {
  try {
    tmux('kill-server');
  } catch {
    // no server was started
  }
  await runtime?.close();
  repo.dispose();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('cfs sessions create --wait', () => {
  it('redraws the step list in place on a terminal, with different steps marked done at two moments of one run', async () => {
    // Arrange: a 100x24 pane running the real CLI, UTF-8 (-u) so marks and spinners show.
    const command = `${[process.execPath, BIN, ...createArgs('tty-run', 'slowish')].map((a) => `'${a}'`).join(' ')}; echo "EXIT=$?"; sleep 600`;
    tmux('-f', '/dev/null', '-u', 'new-session', '-d', '-s', 'cfs', '-x', '100', '-y', '24', '-e', `CFS_API_URL=${runtime.url}`, '-e', `CFS_DATA_DIR=${runtime.dataDir}`, '-c', REPO_ROOT, command);
    // Act: the first moment is while the layer runs (its playbook sleeps), the second after the end.
    const during = await until(
      async () => {
        const running = (await session('tty-run'))?.status.steps?.some((s) => s.layer === 'slowish' && s.state === 'running');
        const shown = screen();
        return running && /✔ render inventory/.test(shown) && SPINNER.test(shown) ? shown : undefined;
      },
      60_000,
      'the pane to show the layer running',
    );
    const after = await until(() => (/EXIT=\d+/.test(screen()) ? screen() : undefined), 60_000, 'the command to end');
    // Assert
    const lines = (text: string) => text.split('\n');
    const row = (text: string, label: string) => lines(text).find((l) => l.includes(label)) ?? '';
    expect(row(during, 'validate images')).toMatch(/^ {2}✔ validate images/);
    expect(row(during, `stage ${imageId}`)).toMatch(/^ {2}✔ stage/);
    expect(row(during, 'render inventory')).toMatch(/^ {2}✔ render inventory/);
    expect(row(during, 'layer 0 slowish')).toMatch(new RegExp(`^ {2}${SPINNER.source} layer 0 slowish +\\d+\\.\\ds$`));
    expect(row(during, `package ${imageId}`)).toMatch(/^ {2}· package/);
    expect(row(during, 'record artifacts')).toMatch(/^ {2}· record artifacts$/);
    expect(row(after, 'layer 0 slowish')).toMatch(/^ {2}✔ layer 0 slowish +\d+\.\ds$/);
    expect(row(after, `package ${imageId}`)).toMatch(/^ {2}✔ package/);
    expect(row(after, 'record artifacts')).toMatch(/^ {2}✔ record artifacts/);
    expect(after).toContain('session tty-run succeeded');
    expect(after).toContain('EXIT=0');
    // Redrawn in place: the list is on screen once, not once per refresh.
    expect(lines(after).filter((l) => l.includes('validate images'))).toHaveLength(1);
    expect(lines(after).filter((l) => l.startsWith('session tty-run (')).length).toBe(1);
  });

  it('prints one plain line per step change and no control characters when piped, and exits 0 only on success', async () => {
    // Arrange
    await configuration('fails', ['command: /bin/false']);
    // Act
    // The first test ran this configuration on this image: without --no-cache the layer would be reused.
    const ok = await piped(...createArgs('piped', 'slowish'), '--no-cache');
    const reused = await piped(...createArgs('piped-reused', 'slowish'));
    const failed = await piped(...createArgs('piped-fails', 'fails'));
    // Assert
    expect(ok.code).toBe(0);
    const outLines = ok.out.trimEnd().split('\n');
    expect(ok.out).not.toMatch(CONTROL);
    expect(new Set(outLines).size).toBe(outLines.length);
    expect(outLines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^validate images: succeeded \(\d+\.\ds\)$/),
        expect.stringMatching(new RegExp(`^stage ${imageId}: succeeded`)),
        'layer 0 slowish: running',
        expect.stringMatching(/^layer 0 slowish: succeeded \((\d+\.\d)s\)$/),
        expect.stringMatching(/^record artifacts: succeeded/),
      ]),
    );
    expect(outLines.indexOf('layer 0 slowish: running')).toBeLessThan(outLines.findIndex((l) => l.startsWith('layer 0 slowish: succeeded')));
    expect(outLines.at(-1)).toBe('session piped succeeded');
    // A reused layer is named with the session it came from as soon as it is restored, on one line.
    expect(reused.code).toBe(0);
    expect(reused.out.split('\n').filter((l) => l.startsWith('layer 0 slowish'))).toEqual([expect.stringMatching(/^layer 0 slowish: cached \(from session piped, \d+ s old\)$/)]);
    expect(failed.code).toBe(1);
    expect(failed.out).toContain('layer 0 fails: failed');
    expect(failed.err.trim()).toMatch(/^Error: session piped-fails failed at ansible \(layer fails[^)]*\): layer 0 'fails' failed/);
  });
});
