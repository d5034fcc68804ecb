import { access, constants } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { ProcessGroups } from './process-groups.ts';
import type { IdMapping } from './user-namespace.ts';
import { startVm, type Accelerator } from './vm-sandbox.ts';

/** The accelerator boot tests use, and why. */
export interface AcceleratorChoice {
  accelerator: Accelerator;
  reason: string;
  /** How long the probe took (0 when it did not need to start a VM). */
  probeMs: number;
}

/**
 * The point a probe VM must reach: the kernel, booted with no initrd and no root device, has run
 * its whole early initialisation (CPUs, timers, devices) and panics when it finds no root to
 * mount. With panic=-1 and -no-reboot QEMU then exits by itself.
 */
export const PROBE_POINT = /Kernel panic - not syncing|VFS: Unable to mount root fs/;

/** The probe's kernel command line (no root device: it stops at PROBE_POINT). */
export const PROBE_KERNEL_PARAMETERS = 'console=ttyS0 root=/dev/cfs-probe-none panic=-1';

/**
 * Whether the boot test may use KVM here. A `/dev/kvm` that exists is not enough (on these
 * machines a KVM guest once hung past the bootloader): a small VM with the image's own kernel
 * runs in the same sandbox as the boot test, with `/dev/kvm` bound, and must print PROBE_POINT on
 * its console within `timeoutMs` (default 5 s; a working KVM gets there in about one). Anything
 * else (no device, no access from the namespace, an error, a hang) chooses TCG, with the reason.
 * The probe VM is killed on every path. Runners probe once and pass the choice to each boot.
 */
export async function chooseAccelerator(options: {
  kernel: string;
  /** Undefined in container mode (the probe VM runs as QEMU alone, like the boot test). */
  mapping: IdMapping | undefined;
  groups: ProcessGroups;
  signal?: AbortSignal;
  /** Tests: the device to look for, and the accelerator the probe VM runs with. */
  device?: string;
  accelerator?: Accelerator;
  timeoutMs?: number;
}): Promise<AcceleratorChoice> {
  if (process.arch !== 'x64') throw new Error(`boot tests run x86_64 guests on x86_64 runners only (this runner is ${process.arch})`);
  const device = options.device ?? '/dev/kvm';
  const accelerator = options.accelerator ?? 'kvm';
  const ok = await access(device, constants.R_OK | constants.W_OK).then(() => true, () => false);
  if (!ok) return { accelerator: 'tcg', reason: `${device} is absent or not usable`, probeMs: 0 };
  const timeoutMs = options.timeoutMs ?? 5_000;
  const started = performance.now();
  const vm = await startVm(
    { name: `cfs-kvm-probe-${randomBytes(6).toString('hex')}`, accelerator, memoryMib: 256, kernelCommandLine: PROBE_KERNEL_PARAMETERS, network: 'none', kernel: options.kernel },
    { mapping: options.mapping, groups: options.groups },
  );
  let output = '';
  let stderr = '';
  try {
    const outcome = await new Promise<'reached' | 'timeout' | 'aborted' | 'ended'>((resolve) => {
      vm.child.stdout!.on('data', (chunk: Buffer) => {
        output = (output + chunk.toString('utf8')).slice(-64_000);
        if (PROBE_POINT.test(output)) resolve('reached');
      });
      vm.child.stderr!.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString('utf8')).slice(-2000)));
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      const onAbort = () => resolve('aborted');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      void vm.exited.finally(() => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        // Output may still be in the pipe when QEMU exits: the stream's end decides.
        vm.child.stdout!.once('end', () => resolve(PROBE_POINT.test(output) ? 'reached' : 'ended'));
        if (vm.child.stdout!.readableEnded) resolve(PROBE_POINT.test(output) ? 'reached' : 'ended');
      });
    });
    const probeMs = Math.round(performance.now() - started);
    if (outcome === 'reached') return { accelerator, reason: `the ${accelerator} probe VM booted its kernel to the root mount in ${probeMs} ms`, probeMs };
    if (outcome === 'aborted') return { accelerator: 'tcg', reason: 'the probe was stopped', probeMs };
    const said = stderr.trim() ? ` (qemu: ${stderr.trim().split('\n').slice(-1)[0]})` : '';
    const what = outcome === 'timeout' ? `did not reach its kernel's root mount within ${timeoutMs} ms` : 'ended before its kernel reached the root mount';
    return { accelerator: 'tcg', reason: `the ${accelerator} probe VM ${what}${said}`, probeMs };
  } finally {
    await vm.kill();
  }
}
