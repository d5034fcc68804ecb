import { lstat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * What a user namespace cannot keep, and how the runner keeps it anyway or says it did not.
 * The image root is unpacked, customized and packed by the namespace's root, an unprivileged
 * host user: it cannot create device nodes (they are recorded from the source listing and
 * written back into the result as mksquashfs pseudo definitions), nor set `trusted.*` or
 * `security.ima` xattrs (lost, and listed in the session's log).
 */

/** A character or block device in a source image, from its `unsquashfs -lln` listing. */
export interface DeviceNode {
  /** Path inside the image, without the leading slash. */
  path: string;
  type: 'c' | 'b';
  mode: number;
  uid: number;
  gid: number;
  major: number;
  minor: number;
}

const DEVICE_LINE = /^([cb])([-rwxsStT]{9}) (\d+)\/(\d+)\s+(\d+),\s*(\d+) \d{4}-\d\d-\d\d \d\d:\d\d squashfs-root\/(.+)$/;

/** The permission string of a listing (`rwsr-x--T`) as mode bits. */
export function modeBits(permissions: string): number {
  let mode = 0;
  const bit = (i: number, value: number, special: number, specialChars: string) => {
    const char = permissions[i] ?? '-';
    if (char === 'r' || char === 'w' || char === 'x') mode |= value;
    if (specialChars.includes(char)) mode |= special | (char === specialChars[0] ? value : 0);
  };
  bit(0, 0o400, 0, '');
  bit(1, 0o200, 0, '');
  bit(2, 0o100, 0o4000, 'sS');
  bit(3, 0o040, 0, '');
  bit(4, 0o020, 0, '');
  bit(5, 0o010, 0o2000, 'sS');
  bit(6, 0o004, 0, '');
  bit(7, 0o002, 0, '');
  bit(8, 0o001, 0o1000, 'tT');
  return mode;
}

/** The device node a listing line describes, if it describes one. */
export function deviceNodeOf(line: string): DeviceNode | undefined {
  const match = DEVICE_LINE.exec(line);
  if (!match) return undefined;
  const [, type, permissions, uid, gid, major, minor, path] = match;
  return {
    path: path!,
    type: type as 'c' | 'b',
    mode: modeBits(permissions!),
    uid: Number(uid),
    gid: Number(gid),
    major: Number(major),
    minor: Number(minor),
  };
}

/** What unsquashfs could not write inside the namespace, from its error output. */
export interface UnpackLosses {
  devices: string[];
  /** `name path` of each xattr that could not be set. */
  xattrs: string[];
  /** Error lines that are none of the expected kinds: the staging fails on any. */
  unexpected: string[];
}

const DEVICE_ERROR = /^create_inode: failed to create (?:character|block) device (.+), because Operation not permitted$/;
const XATTR_ERROR = /^write_xattr: failed to write xattr (\S+) for file (.+) because Operation not permitted$/;
/** Xattrs only the initial namespace's root may set. */
const PRIVILEGED_XATTR = /^(trusted\.|security\.ima$)/;

/** Sorts unsquashfs's error lines (run with -ignore-errors) into the expected losses and the rest. */
export function unpackLosses(stderr: string): UnpackLosses {
  const losses: UnpackLosses = { devices: [], xattrs: [], unexpected: [] };
  for (const line of stderr.split('\n').map((l) => l.trim())) {
    if (!line) continue;
    const device = DEVICE_ERROR.exec(line);
    if (device) {
      losses.devices.push(device[1]!);
      continue;
    }
    const xattr = XATTR_ERROR.exec(line);
    if (xattr && PRIVILEGED_XATTR.test(xattr[1]!)) {
      losses.xattrs.push(`${xattr[1]} ${xattr[2]}`);
      continue;
    }
    losses.unexpected.push(line);
  }
  return losses;
}

/** A pseudo definition mksquashfs reads with `-p`: `"path" type mode uid gid major minor`. */
export function pseudoDefinition(node: DeviceNode): string {
  return `"${node.path}" ${node.type} ${node.mode.toString(8).padStart(4, '0')} ${node.uid} ${node.gid} ${node.major} ${node.minor}`;
}

/**
 * The `-p` arguments that put the source image's device nodes back into the result, for each
 * node whose path the customized root does not hold (a layer may have removed or replaced it,
 * and mksquashfs refuses a pseudo file over a real one) and whose directory it still has; the
 * others are returned as lost, with why.
 */
export async function devicePseudoArgs(root: string, nodes: DeviceNode[]): Promise<{ args: string[]; lost: string[] }> {
  const args: string[] = [];
  const lost: string[] = [];
  for (const node of nodes) {
    if (/["\\\n]/.test(node.path)) {
      lost.push(`/${node.path} (a name mksquashfs pseudo definitions cannot carry)`);
      continue;
    }
    if (await lstat(join(root, node.path)).then(() => true, () => false)) continue;
    const parent = await lstat(join(root, dirname(node.path))).catch(() => undefined);
    if (!parent?.isDirectory()) {
      lost.push(`/${node.path} (its directory is gone from the customized root)`);
      continue;
    }
    args.push('-p', pseudoDefinition(node));
  }
  return { args, lost };
}
