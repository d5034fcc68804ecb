import { constants, type Dirent, type Stats } from 'node:fs';
import { chown, lstat, mkdtemp, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ProcessGroups } from '../process-groups.ts';
import type { IdMapping } from '../user-namespace.ts';
import { OPAQUE_MARKER } from './format.ts';
import { captureTool, packageChanges, packageDatabasePaths, type PackageChanges } from './package-diff.ts';
import type { TreeSnapshot } from './tree-compare.ts';

/**
 * What one layer changed in one image root (issue 19, item 5), read from the layer's overlayfs
 * upper directory and the trees before and after it: the files it added, modified and removed,
 * and the packages it installed, removed, upgraded or downgraded. Stored by the runner as
 * `layer-cache/changes/<key>.json` (the layer cache contract) and shown by the API, the CLI and
 * the dashboard.
 */

/** A changed entry's kind, from the entry after the layer (before it, for a removal). */
export type ChangedFileType = 'file' | 'directory' | 'symlink' | 'device' | 'fifo' | 'socket';

/** One changed path. */
export interface ChangedFile {
  /** Image-absolute (`/etc/motd`). */
  path: string;
  change: 'added' | 'modified' | 'removed';
  type: ChangedFileType;
}

/** The changes report of one layer on one image, as the layer cache contract stores it. */
export interface ChangesReport {
  key: string;
  image_id: string;
  layer_index: number;
  /** Sorted by path (byte order), at most MAX_REPORTED_FILES. */
  files: ChangedFile[];
  /** True when the layer changed more than MAX_REPORTED_FILES paths (the first ones are listed). */
  files_truncated: boolean;
  /** Null when the layer did not touch a dpkg or rpm database. */
  packages: PackageChanges | null;
}

/** Past this many changed paths a report lists no more. */
export const MAX_REPORTED_FILES = 100_000;

/** What changesReport reads. */
export interface ChangesReportOptions {
  /** The layer's upper directory on the host (overlayfs upper form: whiteouts are 0:0 character devices, an opaque directory has `trusted.overlay.opaque=y`). */
  upper: string;
  /**
   * The whole tree before the layer (a read-only view of it on the overlay path). In the tree
   * form (`beforeSnapshot` given) it is not read: the tree before is gone by then.
   */
  before: string;
  /** The whole tree after it. */
  after: string;
  /**
   * The tree form (the tree-compare path, where nothing is mounted): the snapshot taken before
   * the layer (snapshotTree) stands for the tree before. Directories are then judged by mode and
   * owner only (a snapshot has no xattrs).
   */
  beforeSnapshot?: TreeSnapshot;
  /**
   * The tree form: where savePackageDatabases put the package databases before the layer. Without
   * it a layer that touched one gets `packages: null` (and a log line).
   */
  beforePackages?: string;
  key: string;
  image_id: string;
  layer_index: number;
  /** The run's user namespace mapping: the rpm query runs as its root. Undefined where there is none (a container). */
  mapping?: IdMapping;
  groups: ProcessGroups;
  /**
   * Where a copy of an rpm database is queried (in a directory of its own, removed again). With a
   * mapping it must be searchable by others all the way up (rpm takes only an absolute path);
   * otherwise, and by default, the OS's temp directory is used.
   */
  scratch?: string;
  /** Told why the packages part is null when reading a package database failed. */
  log?: (line: string) => void;
  /** How many paths to list at most (default MAX_REPORTED_FILES, the contract's cap; smaller only in tests). */
  maxFiles?: number;
}

/** Host paths are handled as byte strings (latin1: one char per byte), so names that are not UTF-8 survive. */
const bytes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
const fsPath = (byteString: string) => Buffer.from(byteString, 'latin1');
const shown = (byteString: string) => Buffer.from(byteString, 'latin1').toString('utf8');
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Xattrs overlayfs keeps for itself (copy-up origin, opaque, redirect, impure): not the image's. */
const OVERLAY_XATTR = /^(trusted|user)\.overlay\./;
/** How many directories one getfattr run reads (each is handed to it as an open descriptor). */
const XATTR_BATCH = 256;
const XATTR_TIMEOUT_MS = 120_000;
/** How many lstat calls run at once while walking a directory. */
const LSTAT_BATCH = 64;

/** The kind of an entry, from its lstat or its directory entry (both answer the same questions). */
function typeOf(info: Stats | Dirent<Buffer>): ChangedFileType {
  if (info.isDirectory()) return 'directory';
  if (info.isSymbolicLink()) return 'symlink';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'device';
  if (info.isFIFO()) return 'fifo';
  if (info.isSocket()) return 'socket';
  return 'file';
}

/** overlayfs marks a removal in the upper directory with a character device 0:0. */
function isWhiteout(info: Stats | Dirent<Buffer>): boolean {
  return info.isCharacterDevice() && 'rdev' in info && info.rdev === 0;
}

/**
 * The changed paths, sorted, keeping only the first `cap` (byte order) however many arrive: the
 * list is cut back whenever it doubles, so a layer that touched millions of files costs memory
 * for twice the cap, not for all of them.
 */
class SortedCappedList {
  private entries: Array<{ path: string; change: ChangedFile['change']; type: ChangedFileType }> = [];
  private total = 0;

  constructor(private readonly cap: number) {}

  add(path: string, change: ChangedFile['change'], type: ChangedFileType): void {
    this.entries.push({ path, change, type });
    this.total += 1;
    if (this.entries.length >= 2 * this.cap) this.cut();
  }

  private cut(): void {
    this.entries.sort((a, b) => compare(a.path, b.path));
    this.entries.length = Math.min(this.entries.length, this.cap);
  }

  result(): { files: ChangedFile[]; truncated: boolean } {
    this.cut();
    return { files: this.entries.map((e) => ({ path: shown(e.path), change: e.change, type: e.type })), truncated: this.total > this.cap };
  }
}

/** What was at a path before the layer: its kind, and a directory's mode and owner. */
interface BeforeEntry {
  type: ChangedFileType;
  /** Permission bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
}

/**
 * The tree before the layer as the walk asks about it: the tree itself (a read-only view on the
 * overlay path), or a snapshot of its metadata (the tree-compare path, where it is gone).
 */
interface BeforeView {
  entry(path: string): Promise<BeforeEntry | undefined>;
  /** The names in a directory (byte strings). */
  names(path: string): Promise<string[]>;
  /** Each directory's xattrs, or undefined when this view does not know them. */
  xattrs(paths: string[]): Promise<Array<Map<string, string>> | undefined>;
}

const SNAPSHOT_TYPES: Record<string, ChangedFileType> = { d: 'directory', f: 'file', l: 'symlink', c: 'device', b: 'device', p: 'fifo', s: 'socket' };

function directoryView(root: string, groups: ProcessGroups): BeforeView {
  return {
    entry: async (path) => {
      const info = await lstat(fsPath(root + path)).catch(() => undefined);
      return info && { type: typeOf(info), mode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
    },
    names: (path) => namesIn(root + path),
    xattrs: (paths) => directoryXattrs(groups, paths.map((p) => root + p)),
  };
}

/** A snapshot's paths are relative (`etc/motd`, `''` the root) and UTF-8 strings; the walk's are absolute byte strings. */
function snapshotView(snapshot: TreeSnapshot): BeforeView {
  const children = new Map<string, string[]>();
  for (const path of snapshot.entries.keys()) {
    if (path === '') continue;
    const cut = path.lastIndexOf('/');
    const parent = cut < 0 ? '' : bytes(`/${path.slice(0, cut)}`);
    const names = children.get(parent);
    if (names) names.push(bytes(path.slice(cut + 1)));
    else children.set(parent, [bytes(path.slice(cut + 1))]);
  }
  return {
    entry: async (path) => {
      const found = snapshot.entries.get(shown(path).slice(1));
      return found && { type: SNAPSHOT_TYPES[found.type] ?? 'file', mode: found.mode & 0o7777, uid: found.uid, gid: found.gid };
    },
    names: async (path) => children.get(path) ?? [],
    xattrs: async () => undefined,
  };
}

async function namesIn(dir: string): Promise<string[]> {
  return ((await readdir(fsPath(dir), { encoding: 'buffer' })) as Buffer[]).map((n) => n.toString('latin1'));
}

/** A directory of the upper tree, with what was at its path before the layer. */
interface UpperDirectory {
  /** Image-absolute byte path. */
  path: string;
  upper: Stats;
  before: BeforeEntry | undefined;
}

/**
 * Builds the changes report of one layer on one image. Files: each entry of the upper
 * directory is `added` (nothing at its path before) or `modified` (something was: new content,
 * new metadata, or another kind of entry); a directory that only got new children (overlayfs
 * copies every ancestor of a change up) is listed only when its mode, owner or xattrs changed.
 * A whiteout is a removal, of everything under the path too when it was a directory; an opaque
 * directory (its xattr, or an empty `.wh..wh..opq` file in it, which the tree-compare capture
 * writes where it may not set trusted xattrs; the marker itself is not listed) removes every
 * entry of the tree before that it does not hold again; an entry that replaced a directory
 * removes what that directory held. The image root itself is never listed (the upper
 * directory's own metadata is the runner's). Nothing is read through a symlink, and overlayfs's
 * own xattrs are ignored. Packages: see packageChanges.
 */
export async function changesReport(o: ChangesReportOptions): Promise<ChangesReport> {
  const upper = bytes(o.upper);
  const view = o.beforeSnapshot ? snapshotView(o.beforeSnapshot) : directoryView(bytes(o.before), o.groups);
  const list = new SortedCappedList(o.maxFiles ?? MAX_REPORTED_FILES);
  const packagesBefore = o.beforeSnapshot ? o.beforePackages : o.before;
  const targets = await packageDatabasePaths([...(packagesBefore ? [packagesBefore] : []), o.after]);
  const watched = { dpkg: targets.dpkg.map(bytes), rpm: targets.rpm.map(bytes) };
  const touched = { dpkg: false, rpm: false };
  const touches = (path: string, target: string) => path === target || target.startsWith(`${path}/`) || path.startsWith(`${target}/`);
  const emit = (path: string, change: ChangedFile['change'], type: ChangedFileType) => {
    list.add(path, change, type);
    if (!touched.dpkg && watched.dpkg.some((t) => touches(path, t))) touched.dpkg = true;
    if (!touched.rpm && watched.rpm.some((t) => touches(path, t))) touched.rpm = true;
  };
  const lstatUpper = (path: string) => lstat(fsPath(upper + path)).catch(() => undefined);

  /** Lists everything under a directory of the tree before as removed. */
  const removeUnder = async (path: string): Promise<void> => {
    for (const name of await view.names(path)) {
      const child = `${path}/${name}`;
      const info = await view.entry(child);
      if (!info) continue;
      emit(child, 'removed', info.type);
      if (info.type === 'directory') await removeUnder(child);
    }
  };

  // First the upper tree, each entry against what was at its path before (a path whose parent
  // was not a directory before had nothing); directories are judged once their xattrs are read.
  const directories: UpperDirectory[] = [];
  const markedOpaque = new Set<string>();
  const walk = async (path: string, beforeIsDirectory: boolean): Promise<void> => {
    const entries = (await readdir(fsPath(upper + path), { withFileTypes: true, encoding: 'buffer' })) as unknown as Array<Dirent<Buffer>>;
    for (let start = 0; start < entries.length; start += LSTAT_BATCH) {
      // lstat calls wait on the thread pool: a batch at a time keeps it busy; the order of the report comes from sorting.
      const looked = await Promise.all(
        entries.slice(start, start + LSTAT_BATCH).map(async (entry) => {
          const name = entry.name.toString('latin1');
          const child = `${path}/${name}`;
          if (name === OPAQUE_MARKER && entry.isFile()) return { child, marker: true as const };
          // A regular file, symlink, fifo or socket is told by its directory entry alone; a directory's metadata and a device's numbers need lstat.
          const now = entry.isDirectory() || entry.isCharacterDevice() ? await lstatUpper(child) : entry;
          const was = beforeIsDirectory ? await view.entry(child) : undefined;
          return { child, now, was };
        }),
      );
      for (const found of looked) {
        if ('marker' in found) {
          markedOpaque.add(path);
          continue;
        }
        const { child, now, was } = found;
        if (!now) continue;
        if (isWhiteout(now)) {
          if (!was) continue;
          emit(child, 'removed', was.type);
          if (was.type === 'directory') await removeUnder(child);
        } else if (now.isDirectory() && 'mode' in now) {
          directories.push({ path: child, upper: now, before: was });
          await walk(child, was?.type === 'directory');
        } else {
          emit(child, was ? 'modified' : 'added', typeOf(now));
          if (was?.type === 'directory') await removeUnder(child);
        }
      }
    }
  };
  await walk('', true);

  const upperXattrs = await directoryXattrs(
    o.groups,
    directories.map((d) => upper + d.path),
  );
  const sameOwnerAndMode = directories.filter(
    (d) => d.before?.type === 'directory' && d.before.mode === (d.upper.mode & 0o7777) && d.before.uid === d.upper.uid && d.before.gid === d.upper.gid,
  );
  const beforeXattrs = await view.xattrs(sameOwnerAndMode.map((d) => d.path));
  const beforeXattrsOf = new Map(sameOwnerAndMode.map((d, i) => [d.path, beforeXattrs?.[i]]));
  const hidden = new Map<string, boolean>();
  for (const [i, dir] of directories.entries()) {
    const xattrs = upperXattrs[i]!;
    const parent = dir.path.slice(0, dir.path.lastIndexOf('/'));
    const opaque = xattrs.get('trusted.overlay.opaque') === '0x79' || xattrs.get('user.overlay.opaque') === '0x79' || markedOpaque.has(dir.path);
    // Under an opaque directory the whole tree before is hidden, not only its top.
    hidden.set(dir.path, opaque || (hidden.get(parent) ?? false));
    const wasDirectory = dir.before?.type === 'directory';
    if (!dir.before) emit(dir.path, 'added', 'directory');
    else if (!wasDirectory) emit(dir.path, 'modified', 'directory');
    else if (!beforeXattrsOf.has(dir.path)) emit(dir.path, 'modified', 'directory');
    else {
      // A view that does not know xattrs (a snapshot) judges by mode and owner alone.
      const was = beforeXattrsOf.get(dir.path);
      if (was && !sameImageXattrs(xattrs, was)) emit(dir.path, 'modified', 'directory');
    }
    if (wasDirectory && hidden.get(dir.path)) {
      for (const name of await view.names(dir.path)) {
        const child = `${dir.path}/${name}`;
        if (await lstatUpper(child)) continue;
        const info = await view.entry(child);
        if (!info) continue;
        emit(child, 'removed', info.type);
        if (info.type === 'directory') await removeUnder(child);
      }
    }
  }

  const { files, truncated } = list.result();
  return { key: o.key, image_id: o.image_id, layer_index: o.layer_index, files, files_truncated: truncated, packages: await packagesOf(o, packagesBefore, touched) };
}

/**
 * The packages part: null when the layer touched no package database; a failure to read one
 * (an image's database is untrusted input), or a tree form without the databases saved before
 * the layer, is logged and leaves it null.
 */
async function packagesOf(o: ChangesReportOptions, before: string | undefined, touched: { dpkg: boolean; rpm: boolean }): Promise<PackageChanges | null> {
  if (!touched.dpkg && !touched.rpm) return null;
  const what = `changes of layer ${o.layer_index} on image ${o.image_id}: packages not listed`;
  if (before === undefined) {
    o.log?.(`${what}: the package databases before the layer were not saved (savePackageDatabases)`);
    return null;
  }
  let scratch: string | undefined;
  try {
    if (touched.rpm) {
      // rpm takes only an absolute --dbpath: with a mapping, every directory above the copy must let the namespace's root through.
      const parent = o.scratch && (!o.mapping || (await searchableByOthers(o.scratch))) ? o.scratch : tmpdir();
      scratch = await mkdtemp(join(parent, 'cfs-changes-'));
      if (o.mapping) await chown(scratch, o.mapping.uid, o.mapping.gid);
    }
    return await packageChanges({ before, after: o.after, touched, scratch: scratch ?? '', mapping: o.mapping, groups: o.groups });
  } catch (error) {
    o.log?.(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    return null;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** Whether `dir` and every directory above it let anyone through (search permission for others). */
async function searchableByOthers(dir: string): Promise<boolean> {
  for (let current = resolve(dir); ; current = dirname(current)) {
    const info = await stat(current).catch(() => undefined);
    if (!info || (info.mode & 0o001) === 0) return false;
    if (current === dirname(current)) return true;
  }
}

/** Whether two xattr sets are the same once overlayfs's own are left out. */
function sameImageXattrs(a: Map<string, string>, b: Map<string, string>): boolean {
  const image = (m: Map<string, string>) => [...m].filter(([name]) => !OVERLAY_XATTR.test(name)).sort(([x], [y]) => compare(x, y));
  return JSON.stringify(image(a)) === JSON.stringify(image(b));
}

/**
 * Every xattr (name -> hex value) of each directory, in the order given (byte paths). Node has
 * no xattr call, so getfattr reads them; each directory is opened here without following a
 * symlink and handed to getfattr as a descriptor (`/proc/self/fd/N`), so no name has to survive
 * an argv (argv cannot carry names that are not UTF-8) and nothing can be swapped in between.
 */
export async function directoryXattrs(groups: ProcessGroups, paths: string[]): Promise<Array<Map<string, string>>> {
  const all: Array<Map<string, string>> = [];
  for (let start = 0; start < paths.length; start += XATTR_BATCH) {
    const batch = paths.slice(start, start + XATTR_BATCH);
    const handles: FileHandle[] = [];
    try {
      for (const path of batch) handles.push(await open(fsPath(path), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW));
      const args = ['--dump', '--match=-', '--encoding=hex', '--absolute-names', ...handles.map((_h, i) => `/proc/self/fd/${3 + i}`)];
      const output = await captureTool(groups, 'getfattr', args, { timeoutMs: XATTR_TIMEOUT_MS, extraFds: handles.map((h) => h.fd), env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' } });
      const found = parseGetfattr(output.toString('latin1'));
      for (const [i] of batch.entries()) all.push(found.get(`/proc/self/fd/${3 + i}`) ?? new Map());
    } finally {
      for (const handle of handles) await handle.close();
    }
  }
  return all;
}

/** getfattr --dump output: `# file: NAME` then `name=0xHEX` lines, a blank line between files. */
function parseGetfattr(text: string): Map<string, Map<string, string>> {
  const files = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      files.set(line.slice('# file: '.length), current);
    } else if (current && line !== '') {
      const equals = line.lastIndexOf('=');
      if (equals < 0) current.set(line, '');
      else current.set(line.slice(0, equals), line.slice(equals + 1));
    }
  }
  return files;
}
