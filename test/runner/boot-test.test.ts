import { describe, expect, it } from 'vitest';
import { cleanConsoleLine, ConsoleWatcher, tail } from '../../functions/runner/boot-test.ts';
import { chooseAccelerator } from '../../functions/runner/kvm-probe.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { qemuArgs, SANDBOX_INITRD, SANDBOX_KERNEL, vmSandboxArgv, type VmSpec } from '../../functions/runner/vm-sandbox.ts';

const SPEC: VmSpec = {
  name: 'cfs-boot-test',
  accelerator: 'tcg',
  memoryMib: 1024,
  kernelCommandLine: 'root=/dev/vda rootfstype=squashfs ro console=ttyS0 panic=-1',
  network: 'none',
  kernel: '/results/kernel',
  initrd: '/results/initrd',
  rootfs: '/results/rootfs.squashfs',
};

/** The value after `flag` in an argv. */
function after(argv: string[], flag: string): string | undefined {
  const at = argv.indexOf(flag);
  return at < 0 ? undefined : argv[at + 1];
}

describe('the boot test console', () => {
  it('removes colour escapes and carriage returns, so a pattern matches what a person reads', () => {
    // Act
    const line = cleanConsoleLine('[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mmulti-user.target\x1b[0m - Multi-User System.\r');
    // Assert
    expect(line).toBe('[  OK  ] Reached target multi-user.target - Multi-User System.');
  });

  it('matches a line split across chunks, and keeps the line that matched', () => {
    // Arrange
    const watcher = new ConsoleWatcher(/Reached target .*Multi-User System/);
    // Act
    const early = watcher.push('[  OK  ] Reached target local-fs.target\n[  OK  ] Reached tar');
    const late = watcher.push('get multi-user.target - Multi-User System.\r\nDebian GNU/Linux 12 cfs ttyS0\n');
    // Assert
    expect([early, late]).toEqual([false, true]);
    expect(watcher.matched).toBe('[  OK  ] Reached target multi-user.target - Multi-User System.');
  });

  it('matches a prompt that never ends its line', () => {
    // Arrange
    const watcher = new ConsoleWatcher(/login: $/);
    // Act
    const matched = watcher.push('\nDebian GNU/Linux 12 debian ttyS0\n\ndebian login: ');
    // Assert
    expect(matched).toBe(true);
    expect(watcher.matched).toBe('debian login: ');
  });

  it('keeps the last twenty lines, the unfinished one included, for the failure reason', () => {
    // Arrange
    const watcher = new ConsoleWatcher(/never/);
    // Act
    watcher.push(Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n'));
    // Assert
    expect(watcher.last()).toEqual(Array.from({ length: 20 }, (_, i) => `line ${i + 10}`));
    expect(watcher.matched).toBeUndefined();
  });
});

describe('the boot failure reason', () => {
  it("leads with the kernel's panic line when the stack trace after it filled the last lines, and keeps each line short", () => {
    // Arrange
    const watcher = new ConsoleWatcher(/never/);
    watcher.push('Initramfs unpacking failed: junk in compressed archive\nKernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n');
    for (let i = 0; i < 30; i++) watcher.push(`[ 2.80] frame ${i}\n`);
    // Act
    const reason = tail(watcher.last(), watcher.verdict);
    // Assert
    expect(reason).toBe('Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) | ... | [ 2.80] frame 28 | [ 2.80] frame 29');
    expect(tail(['a', '', 'b', 'c', 'x'.repeat(150)])).toBe(`b | c | ${'x'.repeat(99)}…`);
  });

  it("leads with Debian's initramfs ALERT when the shutdown it started printed the last lines", () => {
    // Arrange: the end of a real console (test/e2e/boot-gate.test.ts, root=/dev/vdb).
    const watcher = new ConsoleWatcher(/never/);
    watcher.push('ALERT!  /dev/vdb does not exist.  Dropping to a shell!\nRebooting automatically due to panic= boot argument\n[   36.72] ACPI: PM: Preparing to enter system sleep state S5\n[   36.728064] reboot: Restarting system\n[   36.728715] reboot: machine restart\n');
    // Act
    const reason = tail(watcher.last(), watcher.verdict);
    // Assert
    expect(reason).toBe('ALERT!  /dev/vdb does not exist.  Dropping to a shell! | ... | [   36.728064] reboot: Restarting system | [   36.728715] reboot: machine restart');
  });
});

describe('the boot VM command line', () => {
  it('boots the kernel and initrd the sandbox copied in, with the rootfs as the first virtio disk, read-only, from its descriptor', () => {
    // Act
    const argv = qemuArgs({ ...SPEC, initrd: true, rootfs: true });
    // Assert
    expect(after(argv, '-kernel')).toBe(SANDBOX_KERNEL);
    expect(after(argv, '-initrd')).toBe(SANDBOX_INITRD);
    expect(after(argv, '-append')).toBe(SPEC.kernelCommandLine);
    expect(after(argv, '-add-fd')).toBe('fd=8,set=1,opaque=rootfs');
    expect(after(argv, '-drive')).toBe('file=/dev/fdset/1,format=raw,if=virtio,readonly=on');
    expect(after(argv, '-m')).toBe('1024');
    expect(after(argv, '-machine')).toBe('pc,accel=tcg');
    expect(argv).toContain('-no-reboot');
    expect(after(argv, '-serial')).toBe('stdio');
    expect(after(argv, '-monitor')).toBe('none');
    expect(after(argv, '-nic')).toBe('none');
    expect(argv).not.toContain('-cpu');
  });

  it('gives the guest a network only in egress mode, and the host CPU only with KVM', () => {
    // Act
    const argv = qemuArgs({ ...SPEC, accelerator: 'kvm', network: 'egress', initrd: true, rootfs: true });
    // Assert
    expect(after(argv, '-nic')).toBe('user,model=virtio-net-pci');
    expect(after(argv, '-machine')).toBe('pc,accel=kvm');
    expect(after(argv, '-cpu')).toBe('host');
  });

  it('runs QEMU as root of the user namespace under bwrap, with no host path bound but /usr and /etc entries (the boot files and resolv.conf come from descriptors), and /dev/kvm only for KVM', () => {
    // Act
    const [command, tcg] = vmSandboxArgv(SPEC, { uid: 200000, gid: 200000 }, ['passwd']);
    const [, kvm] = vmSandboxArgv({ ...SPEC, accelerator: 'kvm' }, { uid: 200000, gid: 200000 }, ['passwd']);
    // Assert
    expect(command).toBe('unshare');
    expect(tcg.slice(0, 3)).toEqual(['--user', '--map-users=200000,0,65536', '--map-groups=200000,0,65536']);
    const bwrap = tcg.slice(tcg.indexOf('bwrap') + 1, tcg.indexOf('qemu-system-x86_64'));
    expect(bwrap.at(-1)).toBe('--');
    const bound = bwrap.flatMap((arg, i) => (['--bind', '--ro-bind', '--dev-bind'].includes(arg) ? [bwrap[i + 1]] : []));
    expect(bound).toEqual(['/usr', '/etc/passwd', '/dev/null']);
    const data = bwrap.flatMap((arg, i) => (arg === '--ro-bind-data' ? [`${bwrap[i + 1]} ${bwrap[i + 2]}`] : []));
    expect(data).toEqual(['9 /etc/resolv.conf', `6 ${SANDBOX_KERNEL}`, `7 ${SANDBOX_INITRD}`]);
    expect(bwrap).toContain('--unshare-net');
    expect(bwrap).toContain('--die-with-parent');
    expect(after(bwrap, '--seccomp')).toBe('3');
    expect(bwrap).not.toContain('/dev/kvm');
    expect(after(kvm, '--dev-bind')).toBe('/dev/kvm');
  });
});

describe('the accelerator choice', () => {
  it('chooses TCG without starting anything when the KVM device is absent', async () => {
    // Arrange
    const groups = new ProcessGroups();
    // Act
    const choice = await chooseAccelerator({ kernel: '/nonexistent/kernel', mapping: { uid: 200000, gid: 200000 }, groups, device: '/nonexistent/kvm' });
    // Assert
    expect(choice).toEqual({ accelerator: 'tcg', reason: '/nonexistent/kvm is absent or not usable', probeMs: 0 });
  });
});
