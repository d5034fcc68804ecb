import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseValidationSpec, type BootSpec } from '../../functions/core/sessions/validation-spec.ts';
import { runBootTest, type BootTestOptions, type BootTestResult } from '../../functions/runner/boot-test.ts';
import { runImageChecks } from '../../functions/runner/image-checks.ts';
import { chooseAccelerator, type AcceleratorChoice } from '../../functions/runner/kvm-probe.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { shareWorkspace } from '../../functions/runner/sandbox.ts';
import { rootIdMapping, userNamespaceArgv, type IdMapping } from '../../functions/runner/user-namespace.ts';
import { prepareWorkspace, removeWorkspace, type WorkspaceLayout } from '../../functions/runner/workspace.ts';
import { debianRoot, type DebianRoot } from '../helpers/debian-root.ts';

const run = promisify(execFile);

/**
 * The boot gate's parts on a real image (issue 18): the cached Debian 12 fixture booted with its
 * own kernel and initrd in QEMU in the runner's sandbox (TCG here unless the KVM probe passes),
 * and checks run in its unpacked root. Used directly, not through a session.
 */

/** systemd's line once the image is up (measured on this fixture: printed after the getty starts). */
const UP = 'Reached target .*Multi-User System';

let fixture: DebianRoot;
let mapping: IdMapping;
let base: string;
let choice: AcceleratorChoice;

function bootSpec(overrides: Partial<BootSpec>): BootSpec {
  return parseValidationSpec({ boot: { success_pattern: UP, ...overrides } })!.boot!;
}

/** QEMU processes still alive whose command line holds `marker` (every boot VM's -name starts with cfs-). */
async function qemuProcesses(marker = 'cfs-'): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (cmdline[0]?.endsWith('qemu-system-x86_64') && cmdline.some((a) => a.includes(marker))) found.push(`${name}: ${cmdline.slice(0, 3).join(' ')}`);
  }
  return found;
}

async function boot(overrides: Partial<BootSpec>, extra: Partial<BootTestOptions> = {}): Promise<{ result: BootTestResult; log: string; wallMs: number }> {
  const consoleLog = join(base, `console-${Date.now()}.log`);
  const started = performance.now();
  const result = await runBootTest({
    files: { rootfs: fixture.rootfs, kernel: fixture.kernel, initrd: fixture.initrd },
    boot: bootSpec(overrides),
    network: 'none',
    mapping,
    groups: new ProcessGroups(),
    consoleLog,
    accelerator: choice,
    ...extra,
  });
  const wallMs = Math.round(performance.now() - started);
  console.log(`[boot-gate] ${result.passed ? 'passed' : 'failed'} on ${result.accelerator} in ${result.durationMs} ms (wall ${wallMs} ms): ${result.matchedLine ?? result.reason}`);
  return { result, log: await readFile(consoleLog, 'utf8'), wallMs };
}

beforeAll(async () => {
  fixture = await debianRoot();
  const found = await rootIdMapping();
  if ('problem' in found) throw new Error(found.problem);
  mapping = found;
  base = await mkdtemp(join(tmpdir(), 'cfs-boot-gate-'));
  // Searchable, as a runner's workspace parent is: the namespace's root unpacks below it.
  await chmod(base, 0o711);
  choice = await chooseAccelerator({ kernel: fixture.kernel, mapping, groups: new ProcessGroups() });
  console.log(`[boot-gate] accelerator: ${choice.accelerator} (${choice.reason})`);
}, 1_800_000);

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

describe('the boot test on the Debian 12 fixture', () => {
  it('boots the image with its own kernel and initrd until systemd reaches the multi-user target, and leaves no VM behind', async () => {
    // Act
    const { result, log } = await boot({ timeout_seconds: 300 });
    // Assert
    expect(result.passed).toBe(true);
    expect(result.matchedLine).toMatch(/Reached target .*Multi-User System/);
    expect(result.accelerator).toBe(choice.accelerator);
    expect(log).toContain('Linux version');
    expect(log).toContain('multi-user.target');
    expect(await qemuProcesses()).toEqual([]);
  }, 400_000);

  it('boots the same way in container mode (QEMU alone, as in a Fargate task with no user namespaces), reading its boot files from inherited descriptors', async () => {
    // Act
    const { result } = await boot({ timeout_seconds: 300 }, { mapping: undefined });
    // Assert
    expect(result.passed).toBe(true);
    expect(result.matchedLine).toMatch(/Reached target .*Multi-User System/);
    expect(await qemuProcesses()).toEqual([]);
  }, 400_000);

  it('fails a boot whose root device does not exist as soon as the initramfs gives up, with the console showing why, and leaves no VM behind', async () => {
    // Act
    // Debian's initramfs waits at least 30 s for a root device (rootdelay only lengthens it).
    const { result, wallMs } = await boot({ kernel_parameters: 'root=/dev/vdb rootfstype=squashfs ro console=ttyS0', timeout_seconds: 180 });
    // Assert
    // Debian's initramfs waits for the root device, then honours the appended panic=-1 by rebooting, which -no-reboot turns into QEMU's exit.
    expect(result.passed).toBe(false);
    expect(result.reason).toMatch(/^the VM stopped before the console printed \/Reached target \.\*Multi-User System\/ \(qemu exited with 0\); last console lines: /);
    expect(result.reason).toContain('ALERT!  /dev/vdb does not exist.');
    expect(wallMs).toBeLessThan(180_000);
    expect(await qemuProcesses()).toEqual([]);
  }, 240_000);

  it('fails at its timeout when the pattern never appears although the image boots', async () => {
    // Act
    const { result, wallMs } = await boot({ success_pattern: 'a line this image never prints', timeout_seconds: 12 });
    // Assert
    expect(result.passed).toBe(false);
    expect(result.durationMs).toBeGreaterThanOrEqual(12_000);
    expect(wallMs).toBeLessThan(22_000);
    expect(result.reason).toMatch(/within 12s/);
    expect(result.lastLines.length).toBeGreaterThan(0);
    expect(await qemuProcesses()).toEqual([]);
  }, 60_000);

  it('kills the VM as soon as the caller aborts, and returns without waiting for the timeout', async () => {
    // Arrange
    const controller = new AbortController();
    let name = '';
    let seenRunning: string[] = [];
    // Act
    const { result, wallMs } = await boot(
      { timeout_seconds: 300 },
      {
        signal: controller.signal,
        onStart: (_vm, vmName) => {
          name = vmName;
          setTimeout(() => {
            void qemuProcesses(vmName).then((found) => {
              seenRunning = found;
              controller.abort();
            });
          }, 3_000);
        },
      },
    );
    // Assert
    expect(seenRunning).toHaveLength(1);
    expect(result.passed).toBe(false);
    expect(result.reason).toBe('the boot test was stopped before the console printed the pattern');
    expect(wallMs).toBeLessThan(15_000);
    expect(await qemuProcesses(name)).toEqual([]);
  }, 60_000);

  it('reaches the probe point with the image kernel, so the KVM probe would see a working accelerator (TCG standing in for KVM)', async () => {
    // Act
    const probe = await chooseAccelerator({ kernel: fixture.kernel, mapping, groups: new ProcessGroups(), device: '/dev/null', accelerator: 'tcg', timeoutMs: 120_000 });
    // Assert
    expect(probe.accelerator).toBe('tcg');
    expect(probe.reason).toMatch(/^the tcg probe VM booted its kernel to the root mount in \d+ ms$/);
    expect(await qemuProcesses()).toEqual([]);
  }, 180_000);

  it('gives up on a probe that does not reach its point in time, choosing TCG with the reason', async () => {
    // Act
    const probe = await chooseAccelerator({ kernel: fixture.kernel, mapping, groups: new ProcessGroups(), device: '/dev/null', accelerator: 'tcg', timeoutMs: 300 });
    // Assert
    expect(probe).toMatchObject({ accelerator: 'tcg', reason: 'the tcg probe VM did not reach its kernel\'s root mount within 300 ms' });
    expect(await qemuProcesses()).toEqual([]);
  }, 60_000);
});

describe('checks in the Debian 12 root', () => {
  let layout: WorkspaceLayout;
  let root: string;

  beforeAll(async () => {
    layout = await prepareWorkspace(join(base, 'ws'), { pid: process.pid, start: '' });
    await shareWorkspace(layout, mapping);
    root = join(layout.images, 'debian12');
    // Unpacked as staging does: as root of the user namespace (device nodes are refused there: exit 2).
    const [command, args] = userNamespaceArgv(mapping, 'unsquashfs', ['-no-progress', '-quiet', '-dest', root, fixture.rootfs]);
    await run(command, args, { maxBuffer: 64 << 20 }).catch((error: { code?: number }) => {
      if (error.code !== 2) throw error;
    });
  }, 300_000);

  afterAll(async () => {
    if (layout) await removeWorkspace(layout.root);
  });

  it('passes a check that holds in the image and fails one that exits non-zero, with its exit code', async () => {
    // Act
    const results = await runImageChecks({
      checks: [
        { name: 'shell', command: '/usr/bin/test -x /bin/sh' },
        { name: 'false', command: '/bin/false' },
        { name: 'systemd', command: 'test "$(readlink -f /sbin/init)" = /usr/lib/systemd/systemd && echo systemd is init' },
      ],
      root,
      layout,
      mapping,
      groups: new ProcessGroups(),
      logDir: join(layout.logs, 'checks'),
    });
    // Assert
    expect(results.map((r) => [r.name, r.passed, r.exitCode])).toEqual([
      ['shell', true, 0],
      ['false', false, 1],
      ['systemd', true, 0],
    ]);
    expect(results[1]!.reason).toBe(`check 'false' (/bin/false) exited with 1`);
    expect(results[2]!.lastLine).toBe('systemd is init');
  }, 120_000);
});
