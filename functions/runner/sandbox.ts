import type { ChildProcess } from 'node:child_process';
import { chmod, lstat, mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { bwrapArgs, HOST_ETC_ENTRIES, type SandboxRoot } from './bwrap-argv.ts';
import { RunnerFailure } from './failures.ts';
import type { ChildExit, ProcessGroups } from './process-groups.ts';
import { resolveInRoot } from './root-paths.ts';
import { seccompProgram } from './seccomp-filter.ts';
import { sandboxResolvConf, startSandboxNetwork, type NetworkMode } from './sandbox-network.ts';
import { chownToNamespaceRoot, userNamespaceArgv, type IdMapping } from './user-namespace.ts';
import type { WorkspaceLayout } from './workspace.ts';

/**
 * How Ansible is kept from changing the machine it runs on.
 * - `namespace` (the default; the runner runs as root): every layer runs as root of a user
 *   namespace whose ids are root's subordinate range (an unprivileged host user), under bwrap:
 *   its own mount, pid, ipc, uts, cgroup and network namespaces, a view holding only /usr, a few
 *   /etc entries, the workspace parts it needs and a minimal /dev, most capabilities dropped,
 *   no_new_privs and a seccomp filter (seccomp-filter.ts). Everything ends with the process,
 *   even after a SIGKILL (--die-with-parent; slirp4netns exits when the runner's fd closes).
 * - `container`: the container is the boundary (an ECS task without CAP_SYS_ADMIN can neither
 *   unshare nor mount); Ansible runs directly and the roots get no /proc or /dev.
 */
export type SandboxMode = 'namespace' | 'container';

/** Quotes a string for a POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** What one image root needs mounted during a layer, and what the runner created to make that possible. */
export interface RootMounts extends SandboxRoot {
  /** Paths created only as mount points; removed again before the next layer and before squashing. */
  created: string[];
}

/**
 * Gets an image root ready for a layer: creates /proc and /dev when the root lacks them, and
 * finds where resolv.conf goes, resolved inside the root (a regular file, or the file a symlink
 * names inside it; an empty placeholder when there is none). Everything created is recorded so
 * the squashed result does not carry it. Called before every layer: a layer may have changed
 * what the previous one saw.
 */
export async function prepareRootMounts(root: string, withResolvConf: boolean): Promise<RootMounts> {
  const created: string[] = [];
  for (const fs of ['proc', 'dev']) {
    const path = join(root, fs);
    const kind = await lstat(path).catch(() => undefined);
    if (!kind) {
      await mkdir(path, { mode: 0o555 });
      created.push(path);
    } else if (!kind.isDirectory()) {
      throw new RunnerFailure('layer', `/${fs} in image root ${root} is not a directory`);
    }
  }
  let resolvTarget: string | undefined;
  const etc = await lstat(join(root, 'etc')).catch(() => undefined);
  if (withResolvConf && etc?.isDirectory()) {
    const path = join(root, 'etc', 'resolv.conf');
    const target = await resolveInRoot(root, path, { allowMissing: true });
    const kind = target ? await lstat(target).catch(() => undefined) : undefined;
    if (target && kind?.isFile()) {
      resolvTarget = target;
    } else if (!kind && target === path) {
      await writeFile(path, '', { mode: 0o644 });
      created.push(path);
      resolvTarget = path;
    }
  }
  return { root, ...(resolvTarget ? { resolvTarget } : {}), created };
}

/** Removes what prepareRootMounts created (after the sandbox, and so its mounts, is gone). */
export async function undoRootMounts(mounts: RootMounts): Promise<void> {
  for (const path of [...mounts.created].reverse()) {
    const kind = await lstat(path).catch(() => undefined);
    if (kind?.isDirectory()) await rmdir(path).catch(() => {});
    else if (kind) await rm(path, { force: true });
  }
}

/** A started child with its end. */
export interface StartedProcess {
  child: ChildProcess;
  exited: Promise<ChildExit>;
}

/** What one sandboxed layer run needs. */
export interface SandboxRun {
  layout: WorkspaceLayout;
  mapping: IdMapping;
  network: NetworkMode;
  roots: RootMounts[];
  /** The inventory file (its directory is bound read-only at its path). */
  inventory: string;
  /** The working directory inside the sandbox (the layer's clone). */
  cwd: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  groups: ProcessGroups;
  /** Called at once with the child, before anything is awaited, so no output is missed. */
  attach?: (child: ChildProcess) => void;
}

/** The workspace parts a layer sees: the roots, Ansible's and the layer's temp dirs read-write; the clones and the inventory read-only. */
function workspaceBinds(layout: WorkspaceLayout, inventory: string): Array<{ path: string; readOnly: boolean }> {
  return [
    { path: layout.images, readOnly: false },
    { path: layout.ansibleHome, readOnly: false },
    { path: layout.ansibleTemp, readOnly: false },
    { path: layout.tmp, readOnly: false },
    { path: layout.repos, readOnly: true },
    // The inventory's directory: the extra-vars files the argv names are beside it.
    { path: dirname(inventory), readOnly: true },
  ];
}

/** The /etc entries of HOST_ETC_ENTRIES this host has. */
export async function hostEtcEntries(): Promise<string[]> {
  const present: string[] = [];
  for (const entry of HOST_ETC_ENTRIES) if (await lstat(`/etc/${entry}`).then(() => true, () => false)) present.push(entry);
  return present;
}

/**
 * An empty directory on the host where each sandbox's private mount namespace mounts its
 * trampoline: a tmpfs holding a bind of the workspace (recursive: a root unpacked into RAM is a
 * tmpfs of its own below it). The namespace's root cannot search the
 * directories above a workspace (a 0700 data or temp directory) and bwrap resolves every source
 * path as that user; through the trampoline it needs only the workspace's own modes. The mounts
 * live in a mount namespace of their own and vanish with it.
 */
export const SANDBOX_VIEW = '/run/cfs-sandbox-view';

/** Mounts the trampoline (in the private mount namespace unshare made), then execs the rest of its arguments. */
const TRAMPOLINE = 'set -e; mount -t tmpfs -o mode=0711,size=64k cfs-sandbox-view "$1"; mkdir -m 0711 "$1/ws"; mount --rbind "$2" "$1/ws"; shift 2; exec "$@"';

/**
 * The argv that runs `command` in the sandbox: a private mount namespace for the trampoline,
 * then the user namespace, then bwrap. Every step execs the next, so bwrap stays the caller's
 * child (--die-with-parent) in the caller's process group.
 */
async function sandboxArgv(run: Omit<SandboxRun, 'groups' | 'env' | 'attach'>, fds: { seccomp: number; info?: number; block?: number }): Promise<[string, string[]]> {
  const viewed = (path: string) => join(SANDBOX_VIEW, 'ws', relative(run.layout.root, path));
  const bwrap = bwrapArgs({
    binds: workspaceBinds(run.layout, run.inventory).map((b) => ({ source: viewed(b.path), path: b.path, readOnly: b.readOnly })),
    etc: await hostEtcEntries(),
    resolvConf: viewed(join(run.layout.root, RESOLV_CONF)),
    roots: run.roots,
    chdir: run.cwd,
    seccompFd: fds.seccomp,
    ...(fds.info !== undefined ? { infoFd: fds.info } : {}),
    ...(fds.block !== undefined ? { blockFd: fds.block } : {}),
  });
  const [unshare, namespaced] = userNamespaceArgv(run.mapping, 'bwrap', [...bwrap, run.command, ...run.args]);
  return ['unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', TRAMPOLINE, 'cfs-sandbox', SANDBOX_VIEW, run.layout.root, unshare, ...namespaced]];
}

/** The sandbox's resolv.conf, in the workspace's top directory, which the sandbox never sees. */
const RESOLV_CONF = 'sandbox-resolv.conf';

/**
 * Starts `command` in the sandbox: starts the sandbox argv with the seccomp program and bwrap's
 * info and block pipes, waits for the sandbox's pid, gives its network namespace its network
 * (egress mode), and only then lets the command run. The returned `exited` settles after
 * slirp4netns is stopped too.
 */
export async function startSandboxed(run: SandboxRun): Promise<StartedProcess> {
  await writeFile(join(run.layout.root, RESOLV_CONF), sandboxResolvConf(run.network), { mode: 0o644 });
  await mkdir(SANDBOX_VIEW, { recursive: true, mode: 0o755 });
  // Child fds: 0-2 stdio, 3 seccomp, 4 info, 5 block.
  const [command, args] = await sandboxArgv(run, { seccomp: 3, info: 4, block: 5 });
  const { child, exited } = run.groups.start(command, args, { cwd: '/', env: run.env, stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'] });
  run.attach?.(child);
  const pipes = child.stdio as unknown as Array<Readable | Writable>;
  const [seccomp, info, block] = [pipes[3] as Writable, pipes[4] as Readable, pipes[5] as Writable];
  for (const stream of [seccomp, info, block]) stream.on('error', () => {});
  seccomp.end(seccompProgram());
  const pid = await sandboxPid(info, exited);
  if (pid === undefined) {
    block.destroy();
    const exit = await exited;
    throw new RunnerFailure('environment', `the sandbox could not be set up (it ended with ${exit.signal ?? exit.code} before the command started; its message is in the layer log)`);
  }
  let network: { stop(): Promise<void> } | undefined;
  if (run.network === 'egress') {
    try {
      network = await startSandboxNetwork(pid, run.groups);
    } catch (error) {
      child.kill('SIGKILL');
      block.destroy();
      await exited.catch(() => undefined);
      throw new RunnerFailure('environment', `the sandbox's network could not be set up: ${(error as Error).message}`);
    }
  }
  block.end('go');
  return { child, exited: exited.finally(() => network?.stop()) };
}

/**
 * A shell script that runs its arguments in the same sandbox as a layer, for a person debugging
 * a kept workspace (run as root): the same view, capabilities and seccomp filter (read from
 * `seccompFile`), with no network. Kept in the workspace's top directory, which no layer sees.
 */
export async function sandboxScript(run: Omit<SandboxRun, 'groups' | 'env' | 'attach' | 'command' | 'args' | 'network'>, seccompFile: string): Promise<string> {
  const [command, args] = await sandboxArgv({ ...run, network: 'none', command: '', args: [] }, { seccomp: 3 });
  // The trailing '' is the command placeholder: "$@" takes its place.
  const words = [command, ...args.slice(0, -1)].map(shellQuote).join(' ');
  return [
    '#!/bin/sh',
    '# Written by the CFS runner: runs its arguments in the layer sandbox (no network). Run as root.',
    `mkdir -p ${shellQuote(SANDBOX_VIEW)}`,
    `exec ${words} "$@" 3<${shellQuote(seccompFile)}`,
    '',
  ].join('\n');
}

/** The argv that runs `command` in the sandbox the script at `scriptPath` describes. */
export function sandboxedArgv(scriptPath: string, command: string, args: string[]): [string, string[]] {
  return ['/bin/sh', [scriptPath, command, ...args]];
}

/** bwrap's `child-pid` from its --info-fd JSON, or undefined when bwrap ended first (its stderr says why). */
export async function sandboxPid(info: Readable, exited: Promise<ChildExit>): Promise<number | undefined> {
  let text = '';
  return new Promise<number | undefined>((resolve) => {
    const done = (pid: number | undefined) => {
      info.off('data', onData);
      resolve(pid);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const match = /"child-pid"\s*:\s*(\d+)/.exec(text);
      if (match) done(Number(match[1]));
    };
    info.on('data', onData);
    info.once('end', () => done(undefined));
    void exited.then(() => done(undefined), () => done(undefined));
  });
}

/**
 * Makes a fresh workspace usable by the namespace's root: the directories it writes (the image
 * roots, results, Ansible's home and temp, the layer's TMPDIR) become its own; the workspace's
 * top stays the host root's, searchable but not listable (0711), so the runner's own files there
 * (the sandbox's resolv.conf, the process record) are out of its reach.
 */
export async function shareWorkspace(layout: WorkspaceLayout, mapping: IdMapping): Promise<void> {
  await chmod(layout.root, 0o711);
  for (const dir of [layout.images, layout.results, layout.ansibleHome, layout.ansibleTemp, layout.tmp]) {
    await chownToNamespaceRoot(dir, mapping);
    await chmod(dir, 0o700);
  }
  // Searchable, so bwrap (as the namespace's root) reaches what is bound from below them; the clones stay the host root's, read-only inside.
  await chmod(dirname(layout.ansibleHome), 0o711);
  await chmod(layout.repos, 0o711);
}
