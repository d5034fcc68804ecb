import type { ChildProcess } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { bwrapArgs } from './bwrap-argv.ts';
import { isRunning, processStartTime, signalGroup, type ChildExit, type ProcessGroups, type RecordedProcess } from './process-groups.ts';
import { hostEtcEntries, sandboxPid } from './sandbox.ts';
import { seccompProgram } from './seccomp-filter.ts';
import { sandboxResolvConf, startSandboxNetwork, type NetworkMode } from './sandbox-network.ts';
import { userNamespaceArgv, type IdMapping } from './user-namespace.ts';

/**
 * A QEMU virtual machine in the runner's sandbox (issue 18's boot test): the same user namespace
 * (the guest's emulator runs as an unprivileged host user), bwrap view (/usr and a few /etc
 * entries read-only, nothing of the workspace), capabilities and seccomp filter as a layer, and
 * no network unless `egress` is asked for (slirp4netns, as for layers). QEMU reads only the three
 * files it boots, and not by path: the runner opens them (as the host's root) and hands bwrap and
 * QEMU the descriptors, so no directory above them needs opening to the namespace, and the rootfs
 * descriptor is read-only whatever QEMU asks (`-add-fd`, `/dev/fdset/1`).
 */

/** Which accelerator a VM runs with. x86_64 only for now: aarch64 images (qemu-system-aarch64) are untested. */
export type Accelerator = 'kvm' | 'tcg';

/** Where the kernel and initrd appear inside the sandbox (bwrap copies them there from their descriptors, read-only). */
export const SANDBOX_KERNEL = '/cfs-boot/kernel';
export const SANDBOX_INITRD = '/cfs-boot/initrd';

/** Descriptor numbers in the child: 0-2 stdio, 3 seccomp, 4 info, 5 block, then the boot files and the sandbox's resolv.conf. */
const FD = { seccomp: 3, info: 4, block: 5, kernel: 6, initrd: 7, rootfs: 8, resolv: 9 } as const;

/**
 * What bwrapArgs binds on /etc/resolv.conf before the VM's own resolv.conf (from a descriptor)
 * is mounted over it: a path the namespace's root can always reach, so nothing is written to the
 * host's disk for a VM.
 */
const RESOLV_PLACEHOLDER = '/dev/null';

/** What one VM is. */
export interface VmSpec {
  /** QEMU's `-name`: unique per VM, so a test (or an operator) can find its process. */
  name: string;
  accelerator: Accelerator;
  memoryMib: number;
  /** The whole kernel command line (the caller appends panic=-1). */
  kernelCommandLine: string;
  network: NetworkMode;
  kernel: string;
  initrd?: string;
  rootfs?: string;
}

/**
 * QEMU's arguments (pure): the kernel and initrd from the sandbox's copies, the rootfs as the
 * first virtio disk from descriptor FD.rootfs, read-only; the serial console on stdout and
 * nothing else (no monitor, display, default devices or user config); `-no-reboot`, so a panic
 * (with panic=-1) ends QEMU; QEMU's own seccomp sandbox on top of the runner's.
 */
export function qemuArgs(
  spec: Pick<VmSpec, 'name' | 'accelerator' | 'memoryMib' | 'kernelCommandLine' | 'network'> & { initrd: boolean; rootfs: boolean },
  paths: { kernel: string; initrd: string } = { kernel: SANDBOX_KERNEL, initrd: SANDBOX_INITRD },
): string[] {
  const args = ['-name', spec.name, '-nodefaults', '-no-user-config', '-machine', `pc,accel=${spec.accelerator}`];
  if (spec.accelerator === 'kvm') args.push('-cpu', 'host');
  args.push('-smp', '1', '-m', String(spec.memoryMib));
  args.push('-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-parallel', 'none', '-no-reboot');
  args.push('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  args.push('-kernel', paths.kernel);
  if (spec.initrd) args.push('-initrd', paths.initrd);
  args.push('-append', spec.kernelCommandLine);
  if (spec.rootfs) {
    args.push('-add-fd', `fd=${FD.rootfs},set=1,opaque=rootfs`, '-drive', 'file=/dev/fdset/1,format=raw,if=virtio,readonly=on');
  }
  if (spec.network === 'egress') args.push('-nic', 'user,model=virtio-net-pci');
  else args.push('-nic', 'none');
  return args;
}

/**
 * The argv that runs QEMU in the sandbox (user namespace, then bwrap from bwrapArgs): the
 * boot files copied in from their descriptors (`--ro-bind-data`), `/dev/kvm` bound only for
 * KVM, the sandbox's resolv.conf from its descriptor over bwrapArgs' placeholder.
 */
export function vmSandboxArgv(spec: VmSpec, mapping: IdMapping, etc: string[]): [string, string[]] {
  const bwrap = bwrapArgs({ binds: [], etc, resolvConf: RESOLV_PLACEHOLDER, roots: [], chdir: '/', seccompFd: FD.seccomp, infoFd: FD.info, blockFd: FD.block });
  // bwrapArgs ends with '--'; the VM's own binds go before it.
  const end = bwrap.pop();
  bwrap.push('--ro-bind-data', String(FD.resolv), '/etc/resolv.conf');
  bwrap.push('--ro-bind-data', String(FD.kernel), SANDBOX_KERNEL);
  if (spec.initrd) bwrap.push('--ro-bind-data', String(FD.initrd), SANDBOX_INITRD);
  if (spec.accelerator === 'kvm') bwrap.push('--dev-bind', '/dev/kvm', '/dev/kvm');
  bwrap.push(end!);
  const qemu = qemuArgs({ ...spec, initrd: spec.initrd !== undefined, rootfs: spec.rootfs !== undefined });
  return userNamespaceArgv(mapping, 'bwrap', [...bwrap, 'qemu-system-x86_64', ...qemu]);
}

/**
 * The argv that runs QEMU in container mode (ECS, Fargate: no user namespaces; the container is
 * the boundary, as for the layers): QEMU itself, reading the kernel and initrd from the
 * descriptors it inherits, with QEMU's own user-mode network when `egress` is asked for.
 */
export function vmContainerArgv(spec: VmSpec): [string, string[]] {
  return ['qemu-system-x86_64', qemuArgs({ ...spec, initrd: spec.initrd !== undefined, rootfs: spec.rootfs !== undefined }, { kernel: `/proc/self/fd/${FD.kernel}`, initrd: `/proc/self/fd/${FD.initrd}` })];
}

/** A running VM: its serial console on `child.stdout`, QEMU's messages on `child.stderr`. */
export interface RunningVm {
  child: ChildProcess;
  /** Settles when the sandbox (and so QEMU) ended and everything the VM needed is removed. */
  exited: Promise<ChildExit>;
  /** Kills the whole VM now (the sandbox's process group; bwrap's --die-with-parent takes QEMU with it) and waits for its end. */
  kill(): Promise<ChildExit>;
}

/**
 * Starts a VM in the sandbox. Nothing is written to the host's disk for it. The VM runs in a
 * process group of its own, recorded in `groups` like every child of the runner, so an orphan
 * sweep finds it too.
 */
export async function startVm(spec: VmSpec, options: { mapping: IdMapping | undefined; groups: ProcessGroups }): Promise<RunningVm> {
  const { mapping, groups } = options;
  const handles: FileHandle[] = [];
  try {
    for (const path of [spec.kernel, spec.initrd, spec.rootfs]) if (path) handles.push(await open(path, 'r'));
    const [kernel, initrd, rootfs] = [handles[0]!, spec.initrd ? handles[1] : undefined, spec.rootfs ? handles[handles.length - 1] : undefined];
    const [command, args] = mapping ? vmSandboxArgv(spec, mapping, await hostEtcEntries()) : vmContainerArgv(spec);
    const boot: Array<number | 'ignore'> = [kernel.fd, initrd?.fd ?? 'ignore', rootfs?.fd ?? 'ignore'];
    const started = groups.start(command, args, {
      cwd: '/',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
      // The sandbox's control pipes (seccomp, info, block, resolv.conf) only where there is a sandbox.
      stdio: mapping ? ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe', ...boot, 'pipe'] : ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', ...boot],
    });
    // The child holds its own copies of the descriptors now.
    for (const handle of handles.splice(0)) await handle.close();
    const { child } = started;
    if (!mapping) {
      // Container mode: QEMU is the group's leader; killing the group ends it.
      return {
        child,
        exited: started.exited,
        kill: async () => {
          if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
          return started.exited;
        },
      };
    }
    // The sandbox's first process inside its pid namespace (QEMU's parent), once bwrap says it.
    let init: RecordedProcess | undefined = undefined;
    const kill = async () => {
      // Killing the namespace's first process makes the kernel kill everything in it, QEMU included.
      if (init) signalOne(init.pid, 'SIGKILL');
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      const exit = await exited;
      // The sandbox's top can be reaped before the namespace is torn down: wait until its first
      // process is gone too (its exit waits for every process of the namespace).
      if (init) await gone(init, 10_000);
      return exit;
    };
    const pipes = child.stdio as unknown as Array<Readable | Writable>;
    const [seccomp, info, block, resolv] = [pipes[FD.seccomp] as Writable, pipes[FD.info] as Readable, pipes[FD.block] as Writable, pipes[FD.resolv] as Writable];
    for (const stream of [seccomp, info, block, resolv]) stream.on('error', () => {});
    seccomp.end(seccompProgram());
    resolv.end(sandboxResolvConf(spec.network));
    let network: { stop(): Promise<void> } | undefined;
    const exited = started.exited.finally(async () => {
      await network?.stop();
    });
    const pid = await sandboxPid(info, started.exited);
    if (pid === undefined) {
      block.destroy();
      return { child, exited, kill };
    }
    init = { pid, start: (await processStartTime(pid)) ?? '' };
    if (spec.network === 'egress') {
      try {
        network = await startSandboxNetwork(pid, groups);
      } catch (error) {
        await kill();
        throw new Error(`the VM's network could not be set up: ${(error as Error).message}`);
      }
    }
    block.end('go');
    return { child, exited, kill };
  } catch (error) {
    for (const handle of handles) await handle.close().catch(() => {});
    throw error;
  }
}

/** Signals one process; one that is already gone is not an error. */
function signalOne(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Resolves once the recorded process has ended (gone, a zombie, or its pid reused), or after `limitMs`. */
async function gone(recorded: RecordedProcess, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (recorded.start !== '' && (await isRunning(recorded)) && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
