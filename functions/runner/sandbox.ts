import { lstat, mkdir, readlink, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { isWithin, type MountEntry } from './mounts.ts';
import type { WorkspaceLayout } from './workspace.ts';

/**
 * How Ansible is kept from changing the machine it runs on.
 * - `namespace` (the default; needs root): each layer runs under
 *   `unshare --mount --pid --fork --mount-proc --kill-child`, where a script makes every mount
 *   read-only except the workspace, mounts a fresh tmpfs on /dev/shm (Ansible's multiprocessing
 *   needs it) and binds /proc, /sys, /dev and resolv.conf into each image root. Every mount is
 *   made inside the namespace, so all of them vanish with it, even after a SIGKILL.
 * - `container`: the container is the boundary (an ECS task without CAP_SYS_ADMIN can neither
 *   unshare nor mount); Ansible runs directly and the roots get no /proc, /sys or /dev.
 */
export type SandboxMode = 'namespace' | 'container';

/** The exit code of the sandbox script when it could not set up its mounts (not a playbook failure). */
export const SANDBOX_SETUP_FAILED = 125;

/** Quotes a string for a POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Mount points to make read-only inside the namespace: every one the host has, outside the
 * workspace, once each. /dev/shm is left out: the script mounts its own tmpfs there first.
 */
export function readOnlyMountPoints(mounts: MountEntry[], workspace: string): string[] {
  const points = mounts.map((m) => m.mountPoint).filter((p) => !isWithin(p, workspace) && p !== '/dev/shm');
  return [...new Set(points)];
}

/** What one image root needs bound in during a run, and what the runner created to make that possible. */
export interface RootMounts {
  root: string;
  /** Where inside the root the host's resolv.conf is bound (absolute host path), if anywhere. */
  resolvTarget?: string;
  /** Paths created only as mount points; removed again before the root is squashed. */
  created: string[];
}

/** Everything the sandbox script needs to know. */
export interface SandboxPlan {
  workspace: string;
  readOnly: string[];
  roots: RootMounts[];
  /** The host's resolv.conf, when it has one. */
  hostResolvConf?: string;
}

/**
 * The script run as PID 1 of the new namespace (so it survives a SIGTERM that has no handler
 * and waits for Ansible). It sets up the mounts, then runs its arguments as the command.
 */
export function sandboxScript(plan: SandboxPlan): string {
  const q = shellQuote;
  const lines = [
    '#!/bin/sh',
    '# Written by the CFS runner; runs inside unshare --mount --pid --fork --mount-proc.',
    'set -eu',
    `fail() { echo "cfs-sandbox: $*" >&2; exit ${SANDBOX_SETUP_FAILED}; }`,
    "mount --make-rprivate / || fail 'cannot make mounts private'",
    // The workspace is bound onto itself so it stays writable when its filesystem turns read-only.
    `mount --bind ${q(plan.workspace)} ${q(plan.workspace)} || fail 'cannot bind the workspace'`,
    "[ -d /dev/shm ] || mkdir -p /dev/shm || fail 'cannot create /dev/shm'",
    "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm || fail 'cannot mount a tmpfs on /dev/shm'",
  ];
  for (const point of plan.readOnly) {
    lines.push(`mount -o remount,bind,ro ${q(point)} || fail ${q(`cannot make ${point} read-only`)}`);
  }
  for (const root of plan.roots) {
    for (const fs of ['proc', 'sys', 'dev']) {
      const target = join(root.root, fs);
      lines.push(`mount --rbind /${fs} ${q(target)} || fail ${q(`cannot bind /${fs} into ${root.root}`)}`);
    }
    if (root.resolvTarget && plan.hostResolvConf) {
      lines.push(`mount --bind ${q(plan.hostResolvConf)} ${q(root.resolvTarget)} || fail ${q(`cannot bind resolv.conf into ${root.root}`)}`);
    }
  }
  // Not exec: the shell stays PID 1 and ignores SIGTERM, so Ansible gets it and the shell reports its end.
  lines.push('"$@"', '');
  return lines.join('\n');
}

/** The argv that runs `command` inside the sandbox described by the script at `scriptPath`. */
export function sandboxedArgv(scriptPath: string, command: string, args: string[]): [string, string[]] {
  return ['unshare', ['--mount', '--pid', '--fork', '--mount-proc', '--kill-child', '--', '/bin/sh', scriptPath, command, ...args]];
}

/**
 * Gets an image root ready for the bind mounts: creates /proc, /sys and /dev when the root
 * lacks them, and finds where resolv.conf goes (a regular file, or the file a symlink names
 * inside the root; an empty placeholder when there is none). Everything created is recorded
 * so the squashed result does not carry it.
 */
export async function prepareRootMounts(root: string, withResolvConf: boolean): Promise<RootMounts> {
  const created: string[] = [];
  for (const fs of ['proc', 'sys', 'dev']) {
    const path = join(root, fs);
    const kind = await lstat(path).catch(() => undefined);
    if (!kind) {
      await mkdir(path, { mode: 0o555 });
      created.push(path);
    } else if (!kind.isDirectory()) {
      throw new Error(`/${fs} in image root ${root} is not a directory`);
    }
  }
  let resolvTarget: string | undefined;
  const etc = await lstat(join(root, 'etc')).catch(() => undefined);
  if (withResolvConf && etc?.isDirectory()) {
    const path = join(root, 'etc', 'resolv.conf');
    const target = await resolveInRoot(root, path);
    const kind = target ? await lstat(target).catch(() => undefined) : undefined;
    if (target && kind?.isFile()) {
      resolvTarget = target;
    } else if (!kind && target === path) {
      await writeFile(path, '', { mode: 0o644 });
      created.push(path);
      resolvTarget = path;
    }
  }
  return { root, resolvTarget, created };
}

/** Removes what prepareRootMounts created (after the namespace, and so its mounts, is gone). */
export async function undoRootMounts(mounts: RootMounts): Promise<void> {
  for (const path of [...mounts.created].reverse()) {
    const kind = await lstat(path).catch(() => undefined);
    if (kind?.isDirectory()) await rmdir(path).catch(() => {});
    else if (kind) await rm(path, { force: true });
  }
}

/**
 * Follows symlinks the way they resolve inside the root (absolute targets are relative to the
 * root), without ever leaving it. Returns the host path, or undefined when a link points out
 * of the root or loops.
 */
export async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  let current = path;
  for (let hops = 0; hops < 16; hops += 1) {
    const kind = await lstat(current).catch(() => undefined);
    if (!kind?.isSymbolicLink()) return isWithin(current, root) ? current : undefined;
    const target = await readlink(current);
    current = normalize(target.startsWith('/') ? join(root, target) : join(dirname(current), target));
    if (!isWithin(current, root)) return undefined;
  }
  return undefined;
}
