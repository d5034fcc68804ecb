import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseXattrDump } from '../../functions/runner/change-sets/format.ts';

const execFileAsync = promisify(execFile);

/** Everything the layer cache must keep of one entry (mtimes to the nanosecond, in decimal). */
export interface ListedEntry {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  mtime: string;
  content?: string;
  target?: string;
  rdev?: string;
  xattrs: Record<string, string>;
  /** The first path (in sorted order) of the entry's hard-link group among non-directories. */
  linkGroup?: string;
}

function typeOf(info: Awaited<ReturnType<typeof lstat>>): string {
  if (info.isDirectory()) return 'dir';
  if (info.isFile()) return 'file';
  if (info.isSymbolicLink()) return 'symlink';
  if (info.isCharacterDevice()) return 'char';
  if (info.isBlockDevice()) return 'block';
  if (info.isFIFO()) return 'fifo';
  return 'socket';
}

/**
 * Lists a tree as the host's root sees it, for comparing two trees in full: names, types,
 * contents (sha256), owners, modes, mtimes, symlink targets, device numbers, xattrs (overlayfs's
 * own trusted.overlay.* left out) and hard-link groups. `''` is the root itself.
 */
export async function listTree(root: string): Promise<Record<string, ListedEntry>> {
  const listed: Record<string, ListedEntry> = {};
  const inodes = new Map<number, string[]>();
  const walk = async (rel: string): Promise<void> => {
    const path = rel === '' ? root : join(root, rel);
    const info = await lstat(path);
    const entry: ListedEntry = { type: typeOf(info), mode: (info.mode & 0o7777).toString(8), uid: info.uid, gid: info.gid, mtime: (await lstat(path, { bigint: true })).mtimeNs.toString(), xattrs: {} };
    if (info.isFile()) entry.content = createHash('sha256').update(await readFile(path)).digest('hex');
    if (info.isSymbolicLink()) entry.target = await readlink(path);
    if (info.isCharacterDevice() || info.isBlockDevice()) entry.rdev = `${Math.floor(info.rdev / 256)}:${info.rdev % 256}`;
    listed[rel] = entry;
    if (!info.isDirectory()) inodes.set(info.ino, [...(inodes.get(info.ino) ?? []), rel]);
    if (info.isDirectory()) for (const name of (await readdir(path)).sort()) await walk(rel === '' ? name : `${rel}/${name}`);
  };
  await walk('');
  for (const paths of inodes.values()) {
    const first = paths.sort()[0]!;
    for (const path of paths) listed[path]!.linkGroup = first;
  }
  const { stdout } = await execFileAsync('getfattr', ['-R', '-P', '-h', '-d', '-e', 'hex', '-m', '-', '.'], { cwd: root, maxBuffer: 64 << 20 });
  for (const entry of parseXattrDump(stdout)) {
    const rel = entry.path === '.' ? '' : entry.path.replace(/^\.\//, '');
    for (const [name, value] of entry.attributes) if (!name.startsWith('trusted.overlay.') && listed[rel]) listed[rel]!.xattrs[name] = value;
  }
  return listed;
}
