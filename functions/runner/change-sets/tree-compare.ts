import { chmod, lchown, link, lstat, readdir, writeFile } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { dirname, join } from 'node:path';
import { ToolError, type ProcessGroups } from '../process-groups.ts';
import { OPAQUE_MARKER, OPAQUE_XATTR, restoreXattrs } from './format.ts';
import { applyMtimes } from './mtimes.ts';

/**
 * The change-set capture where nothing can be mounted (Fargate): the tree is snapshotted
 * (metadata only) before a layer, and after it the difference is written out in the form an
 * overlayfs upper directory would have had, which captureChangeSet then takes as it is.
 */

/** One entry's metadata: enough to tell it changed without reading its content (a write moves mtime and ctime, an xattr or link change moves ctime). */
export interface SnapshotEntry {
  ino: bigint;
  /** `d` directory, `f` regular file, `l` symlink, `c`/`b` device, `p` fifo, `s` socket. */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  nlink: number;
  rdev: number;
}

/** Every entry of a tree by its path relative to the root (`''` is the root itself). */
export interface TreeSnapshot {
  entries: Map<string, SnapshotEntry>;
}

function typeOf(info: BigIntStats): string {
  if (info.isDirectory()) return 'd';
  if (info.isFile()) return 'f';
  if (info.isSymbolicLink()) return 'l';
  if (info.isCharacterDevice()) return 'c';
  if (info.isBlockDevice()) return 'b';
  if (info.isFIFO()) return 'p';
  return 's';
}

function entryOf(info: BigIntStats): SnapshotEntry {
  return {
    ino: info.ino,
    type: typeOf(info),
    mode: Number(info.mode & 0o7777n),
    uid: Number(info.uid),
    gid: Number(info.gid),
    size: info.size,
    mtimeNs: info.mtimeNs,
    ctimeNs: info.ctimeNs,
    nlink: Number(info.nlink),
    rdev: Number(info.rdev),
  };
}

/** An entry removed between readdir and lstat is simply not there; any other error is thrown. */
function vanished(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}

const child = (dir: string, name: string) => (dir === '' ? name : `${dir}/${name}`);

/**
 * lstat of every entry of the tree at `root` (never following a link, never reading content),
 * a directory's entries stat'ed together.
 */
export async function snapshotTree(root: string): Promise<TreeSnapshot> {
  const entries = new Map<string, SnapshotEntry>();
  entries.set('', entryOf(await lstat(root, { bigint: true })));
  const pending = [''];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    // An unreadable directory is an error, never an empty one (its entries would look removed).
    const names = await readdir(join(root, dir));
    const infos = await Promise.all(names.map((name) => lstat(join(root, dir, name), { bigint: true }).catch(vanished)));
    for (const [i, name] of names.entries()) {
      const info = infos[i];
      if (!info) continue;
      const path = child(dir, name);
      entries.set(path, entryOf(info));
      if (info.isDirectory()) pending.push(path);
    }
  }
  return { entries };
}

function differs(a: SnapshotEntry, b: SnapshotEntry): boolean {
  return (
    a.ino !== b.ino ||
    a.mode !== b.mode ||
    a.uid !== b.uid ||
    a.gid !== b.gid ||
    a.size !== b.size ||
    a.mtimeNs !== b.mtimeNs ||
    a.ctimeNs !== b.ctimeNs ||
    a.nlink !== b.nlink ||
    a.rdev !== b.rdev
  );
}

function ancestors(path: string): string[] {
  const found: string[] = [];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) found.push(path.slice(0, i));
  return found;
}

/** What changed between two snapshots, in overlayfs upper terms. */
export interface TreeDifference {
  /** Added or changed entries (everything under an opaque directory included). */
  changed: string[];
  /** Directories whose earlier contents are hidden: replaced by a new directory, or a directory where there was none of that kind. */
  opaque: string[];
  /** The top of each removed subtree whose parent is still the same directory. */
  removed: string[];
}

/**
 * Compares two snapshots of one tree. A directory removed and made again may get the freed inode
 * number back (ext4 often gives it): it is then taken for the old directory, and its changes are
 * recorded entry by entry (its old entries whited out) rather than as an opaque directory, which
 * restores to the same tree. Birth times cannot tell them apart, as an overlayfs copy-up gives a
 * directory a new one.
 */
export function compareSnapshots(before: TreeSnapshot, after: TreeSnapshot): TreeDifference {
  const opaque = new Set<string>();
  for (const [path, now] of after.entries) {
    const was = before.entries.get(path);
    if (path !== '' && now.type === 'd' && was && (was.type !== 'd' || was.ino !== now.ino)) opaque.add(path);
  }
  const underOpaque = (path: string) => opaque.has(path) || ancestors(path).some((a) => opaque.has(a));
  const changed: string[] = [];
  for (const [path, now] of after.entries) {
    if (path === '') continue;
    const was = before.entries.get(path);
    if (!was || was.type !== now.type || differs(was, now) || underOpaque(path)) changed.push(path);
  }
  const removed: string[] = [];
  for (const path of before.entries.keys()) {
    if (path === '' || after.entries.has(path)) continue;
    const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    const parentNow = after.entries.get(parent);
    const parentWas = before.entries.get(parent);
    // A removal under a removed, replaced or retyped directory is covered by that directory's own change.
    if (parentNow?.type === 'd' && parentWas?.type === 'd' && parentNow.ino === parentWas.ino && !underOpaque(parent)) removed.push(path);
  }
  return { changed, opaque: [...opaque], removed };
}

/** Paths in an order where each directory comes before what is in it. */
function parentsFirst(paths: Iterable<string>): string[] {
  return [...paths].sort((a, b) => {
    const x = a.replace(/\//g, '\0');
    const y = b.replace(/\//g, '\0');
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** Copies the listed entries (relative to `from`) into `to` with everything (owners, modes, mtimes, xattrs, ACLs; hard links among them kept) by a tar pipe, never recursing. */
async function copyEntries(from: string, to: string, list: string[], groups: ProcessGroups): Promise<void> {
  const common = ['--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner'];
  const reader = groups.start('tar', ['-C', from, '--create', '--file=-', '--no-recursion', '--null', '--files-from=-', ...common], { stdio: ['pipe', 'pipe', 'pipe'] });
  const writer = groups.start('tar', ['-C', to, '--extract', '--file=-', '--preserve-permissions', '--same-owner', ...common], { stdio: [reader.child.stdout!, 'ignore', 'pipe'] });
  const errors = { reader: [] as Buffer[], writer: [] as Buffer[] };
  reader.child.stderr?.on('data', (chunk: Buffer) => errors.reader.push(chunk));
  writer.child.stderr?.on('data', (chunk: Buffer) => errors.writer.push(chunk));
  reader.child.stdin?.on('error', () => {});
  reader.child.stdin?.end(list.map((p) => `${p}\0`).join(''));
  const [read, written] = await Promise.all([reader.exited, writer.exited]);
  if (read.code !== 0) throw new ToolError('tar --create', read, Buffer.concat(errors.reader).toString('utf8'));
  if (written.code !== 0) throw new ToolError('tar --extract', written, Buffer.concat(errors.writer).toString('utf8'));
}

/**
 * Builds in the empty directory `upper` the upper directory an overlay would have left for what
 * changed in `root` since `before`: changed and added entries copied with everything (tar, hard
 * links among them kept), their ancestor directories with their metadata, a character device
 * 0:0 (a whiteout) for the top of each removed subtree (one mknod, the others hard links to it,
 * as overlayfs does), and each directory that replaced another (or something else) marked
 * opaque: `trusted.overlay.opaque=y`, or, where the runner may not write trusted xattrs (a
 * container without CAP_SYS_ADMIN), an empty `.wh..wh..opq` file, which captureChangeSet carries
 * as it is. The upper's root takes the root's metadata. `changed` counts added, changed and
 * removed paths.
 */
export async function diffToUpper(o: {
  root: string;
  before: TreeSnapshot;
  upper: string;
  groups: ProcessGroups;
  /** How opaque directories are marked: the xattr where it can be written, else marker files (the default), or always marker files. */
  opaqueMarks?: 'xattr-or-files' | 'files';
}): Promise<{ changed: number }> {
  const { root, upper, groups } = o;
  if ((await readdir(upper)).length > 0) throw new Error(`the upper directory ${upper} is not empty`);
  const after = await snapshotTree(root);
  const difference = compareSnapshots(o.before, after);
  const listed = new Set<string>(['.']);
  for (const path of [...difference.changed, ...difference.removed]) {
    for (const ancestor of ancestors(path)) listed.add(ancestor);
    if (after.entries.has(path)) listed.add(path);
  }
  await copyEntries(root, upper, parentsFirst(listed), groups);

  // Whiteouts and markers change their directories' mtimes: those are put back after.
  const touched = new Set<string>();
  let first: string | undefined;
  for (const path of difference.removed) {
    const target = join(upper, path);
    if (first === undefined) {
      await groups.run('mknod', ['-m', '000', '--', target, 'c', '0', '0']);
      first = target;
    } else {
      await link(first, target);
    }
    touched.add(dirname(path) === '.' ? '' : dirname(path));
  }
  if (difference.opaque.length > 0) {
    const entries = difference.opaque.map((path) => ({ path, attributes: new Map([[OPAQUE_XATTR, '"y"']]) }));
    try {
      if (o.opaqueMarks === 'files') throw new ToolError('setfattr', { code: 1, signal: null }, 'marker files asked for');
      await restoreXattrs(groups, upper, entries);
    } catch (error) {
      if (!(error instanceof ToolError)) throw error;
      for (const dir of difference.opaque) {
        const marker = join(upper, dir, OPAQUE_MARKER);
        await writeFile(marker, '', { mode: 0o444 });
        await lchown(marker, 0, 0);
        await chmod(marker, 0o444);
        touched.add(dir);
      }
    }
  }
  // To the nanosecond: the capture records the upper's mtimes as they are.
  const mtime_ns = Object.fromEntries([...touched].map((dir) => [dir === '' ? '.' : dir, after.entries.get(dir)!.mtimeNs.toString()]));
  await applyMtimes(groups, upper, { version: 1, mtime_ns });
  return { changed: difference.changed.length + difference.removed.length };
}
