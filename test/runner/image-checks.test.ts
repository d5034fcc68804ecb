import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSampleRoot } from '../../functions/cli/images/sample-root.ts';
import { runImageChecks, type ImageChecksOptions } from '../../functions/runner/image-checks.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { shareWorkspace } from '../../functions/runner/sandbox.ts';
import { rootIdMapping, type IdMapping } from '../../functions/runner/user-namespace.ts';
import { prepareWorkspace, removeWorkspace, type WorkspaceLayout } from '../../functions/runner/workspace.ts';

const run = promisify(execFile);

let base: string;
let layout: WorkspaceLayout;
let mapping: IdMapping;
let root: string;

/** Live processes whose command line holds `marker`. */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(name));
  }
  return found;
}

function options(overrides: Partial<ImageChecksOptions>): ImageChecksOptions {
  return { checks: [], root, layout, mapping, groups: new ProcessGroups(), logDir: join(layout.logs, 'checks'), ...overrides };
}

beforeAll(async () => {
  const found = await rootIdMapping();
  if ('problem' in found) throw new Error(found.problem);
  mapping = found;
  base = await mkdtemp(join(tmpdir(), 'cfs-image-checks-'));
  layout = await prepareWorkspace(join(base, 'ws'), { pid: process.pid, start: '' });
  await shareWorkspace(layout, mapping);
  // As staging leaves it: the root's files owned by the namespace's ids.
  root = join(layout.images, 'image-1');
  await buildSampleRoot(root);
  await writeFile(join(root, 'etc/cfs-check-marker'), 'the image\n');
  await run('chown', ['-R', `${mapping.uid}:${mapping.gid}`, root]);
}, 120_000);

afterAll(async () => {
  if (layout) await removeWorkspace(layout.root);
  if (base) await rm(base, { recursive: true, force: true });
});

describe('checks in the customized root', () => {
  it('passes a command that exits 0 inside the root, as the image root of the namespace, and keeps its output', async () => {
    // Act
    const [result] = await runImageChecks(options({ checks: [{ name: 'whoami', command: 'echo "uid $(id -u) in $(cat /etc/cfs-check-marker)"; test -x /bin/sh' }] }));
    // Assert
    expect(result).toMatchObject({ name: 'whoami', passed: true, exitCode: 0, timedOut: false, lastLine: 'uid 0 in the image' });
    expect(result!.reason).toBeUndefined();
    expect(await readFile(result!.logPath, 'utf8')).toContain('uid 0 in the image');
  });

  it('fails a command that exits non-zero with its exit code and last output line, and runs the checks after it', async () => {
    // Act
    const results = await runImageChecks(
      options({
        checks: [
          { name: 'broken', command: 'echo first; echo "the last words" >&2; exit 3' },
          { name: 'false', command: '/bin/false' },
          { name: 'after', command: 'true' },
        ],
      }),
    );
    // Assert
    expect(results.map((r) => [r.name, r.passed, r.exitCode])).toEqual([
      ['broken', false, 3],
      ['false', false, 1],
      ['after', true, 0],
    ]);
    expect(results[0]!.lastLine).toBe('the last words');
    expect(results[0]!.reason).toBe(`check 'broken' (echo first; echo "the last words" >&2; exit 3) exited with 3: the last words`);
    expect(results[1]!.reason).toBe(`check 'false' (/bin/false) exited with 1`);
  });

  it('sees the image root, not the host: the host runner file is absent and the root is /', async () => {
    // Act
    const [result] = await runImageChecks(options({ checks: [{ name: 'view', command: `test ! -e ${layout.root}/.cfs-runner-workspace && test -e /etc/passwd && echo inside` }] }));
    // Assert
    expect(result).toMatchObject({ passed: true, lastLine: 'inside' });
  });

  it('kills a check at its time limit, leaving no process behind', async () => {
    // Arrange
    // sleep takes a fraction: a number no other process on the machine has in its command line.
    const marker = `59.${process.pid}${Date.now() % 100_000}`;
    // Act
    const [result] = await runImageChecks(options({ checks: [{ name: 'slow', command: `sleep ${marker}` }], timeoutSeconds: 2 }));
    // Assert
    expect(result).toMatchObject({ passed: false, timedOut: true, exitCode: null });
    expect(result!.durationMs).toBeLessThan(10_000);
    expect(result!.reason).toMatch(/^check 'slow' .* did not end within 2s/);
    expect(await processesWith(marker)).toEqual([]);
  });

  it('stops the running check when the run is aborted and starts no other', async () => {
    // Arrange
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1_500);
    // Act
    const results = await runImageChecks(options({ checks: [{ name: 'slow', command: 'sleep 60' }, { name: 'never', command: 'true' }], signal: controller.signal }));
    // Assert
    expect(results.map((r) => [r.name, r.passed, r.signal])).toEqual([['slow', false, 'SIGKILL']]);
  });

  it('removes the mount points it made in the root and the directory it bound', async () => {
    // Arrange
    await rm(join(root, 'proc'), { recursive: true });
    // Act
    await runImageChecks(options({ checks: [{ name: 'proc', command: 'test -d /proc/self' }] }));
    // Assert
    expect(await readdir(root)).not.toContain('proc');
    expect(await readdir(layout.root)).not.toContain('checks-empty');
  });
});
