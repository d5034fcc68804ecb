/**
 * The bwrap command line a layer runs under (inside the user namespace of user-namespace.ts).
 * bwrap builds the whole view from nothing on a tmpfs: only what is named here exists in it.
 * Workspace parts are bound from `source` (the workspace as the sandbox's trampoline shows it,
 * see sandbox.ts) to their host paths, as the inventory names them.
 */

/** Capabilities a package manager in a chroot uses; every other one (CAP_SYS_ADMIN first) is dropped. */
export const KEPT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_SETFCAP',
  'CAP_AUDIT_WRITE',
] as const;

/**
 * The host's /etc entries the tools need (ansible, python, git, the chroot command, TLS), read-only.
 * Not shadow, not the rest of /etc. The sandbox's resolv.conf is the runner's own, not the host's.
 */
export const HOST_ETC_ENTRIES = [
  'passwd',
  'group',
  'hosts',
  'nsswitch.conf',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'alternatives',
  'ansible',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'localtime',
  'os-release',
  'python3',
  'python3.11',
  'python3.12',
  'python3.13',
  'gitconfig',
] as const;

/** The merged-/usr links of a Debian host (the tools live under /usr, bound read-only). */
const USR_LINKS: Array<[string, string]> = [
  ['usr/bin', '/bin'],
  ['usr/sbin', '/sbin'],
  ['usr/lib', '/lib'],
  ['usr/lib64', '/lib64'],
];

/** One image root as the sandbox mounts it. */
export interface SandboxRoot {
  root: string;
  /** Where, inside the root, the sandbox's resolv.conf goes (a host path resolved in the root), if anywhere. */
  resolvTarget?: string;
}

/** Everything bwrapArgs needs. */
export interface BwrapPlan {
  /** Workspace directories, bound at `path` from `source`. */
  binds: Array<{ source: string; path: string; readOnly: boolean }>;
  /** /etc entries the host has (a subset of HOST_ETC_ENTRIES). */
  etc: string[];
  /** The sandbox's resolv.conf, bound read-only on its own /etc/resolv.conf and each root's. */
  resolvConf: string;
  roots: SandboxRoot[];
  chdir: string;
  seccompFd: number;
  /** bwrap writes the sandbox's pid here (the runner then sets up its network)... */
  infoFd?: number;
  /** ...and waits for a byte here before running the command. */
  blockFd?: number;
}

/** bwrap's argv up to and including `--`; the command and its arguments follow. */
export function bwrapArgs(plan: BwrapPlan): string[] {
  const args: string[] = ['--ro-bind', '/usr', '/usr'];
  for (const [target, link] of USR_LINKS) args.push('--symlink', target, link);
  for (const entry of plan.etc) args.push('--ro-bind', `/etc/${entry}`, `/etc/${entry}`);
  args.push('--ro-bind', plan.resolvConf, '/etc/resolv.conf');
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  for (const bind of plan.binds) args.push(bind.readOnly ? '--ro-bind' : '--bind', bind.source, bind.path);
  for (const root of plan.roots) {
    args.push('--proc', `${root.root}/proc`, '--dev', `${root.root}/dev`);
    if (root.resolvTarget) args.push('--ro-bind', plan.resolvConf, root.resolvTarget);
  }
  args.push(
    // Every namespace bwrap makes except the user one: that is the runner's (ids 0..65535 mapped), and a nested one would collapse owners.
    '--unshare-ipc',
    '--unshare-pid',
    '--unshare-net',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--hostname',
    'cfs-sandbox',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
  );
  for (const capability of KEPT_CAPABILITIES) args.push('--cap-add', capability);
  args.push('--chdir', plan.chdir, '--seccomp', String(plan.seccompFd));
  if (plan.infoFd !== undefined) args.push('--info-fd', String(plan.infoFd));
  if (plan.blockFd !== undefined) args.push('--block-fd', String(plan.blockFd));
  args.push('--');
  return args;
}
