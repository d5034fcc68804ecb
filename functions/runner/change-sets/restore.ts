import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lchown, lstat, lutimes, mkdir, mkdtemp, open, readdir, readFile, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { unpackLosses } from '../device-nodes.ts';
import { ToolError, type ProcessGroups } from '../process-groups.ts';
import { chownToNamespaceRoot, userNamespaceArgv, type IdMapping } from '../user-namespace.ts';
import { applyMtimes, MTIMES_FILE, readMtimesFile, type MtimesDocument } from './mtimes.ts';
import { ChangeSetFormatError, dumpXattrs, isWhiteout, OPAQUE_MARKER, OPAQUE_XATTR, parentsAreDirectories, removeXattrs, restoreXattrs, sha256OfHandle, type XattrDumpEntry } from './format.ts';

/**
 * A change set whose bytes are not the ones its cache entry recorded: refused before anything
 * of it is unpacked (the layer then runs again; a change set is never trusted on its name).
 */
export class ChangeSetDigestError extends Error {
  override readonly name = 'ChangeSetDigestError' as const;
  constructor(
    readonly changeSet: string,
    readonly expectedSha256: string,
    /** The digest measured, or undefined when the file changed while it was being unpacked. */
    readonly actualSha256: string | undefined,
  ) {
    super(
      actualSha256 === undefined
        ? `change set ${changeSet} changed while it was being unpacked; refusing it`
        : `change set ${changeSet} has sha256 ${actualSha256}, its entry recorded ${expectedSha256}; refusing it`,
    );
  }
}

/** A change set opened once and checked through that one descriptor, so what is unpacked is what was hashed. */
interface VerifiedChangeSet {
  handle: FileHandle;
  /** The open file as a path the host's processes can read. */
  path: string;
  assertUnchanged(): Promise<void>;
}

async function openVerified(changeSet: string, expectedSha256: string): Promise<VerifiedChangeSet> {
  const handle = await open(changeSet, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const before = await handle.stat();
    if (!before.isFile()) throw new ChangeSetFormatError(`change set ${changeSet} is not a regular file`);
    const actual = await sha256OfHandle(handle);
    if (actual !== expectedSha256.toLowerCase()) throw new ChangeSetDigestError(changeSet, expectedSha256, actual);
    return {
      handle,
      path: `/proc/${process.pid}/fd/${handle.fd}`,
      assertUnchanged: async () => {
        const after = await handle.stat();
        if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || after.ctimeMs !== before.ctimeMs) {
          throw new ChangeSetDigestError(changeSet, expectedSha256, undefined);
        }
      },
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** One `path C|B time mode uid gid major minor` line of `unsquashfs -pf` output (the path backslash-escaped). */
interface PseudoDevice {
  path: string;
  type: 'c' | 'b';
  mtime: number;
  mode: number;
  uid: number;
  gid: number;
  major: number;
  minor: number;
}

/** The device lines of `unsquashfs -pf` output. */
export function parsePseudoDevices(text: string): PseudoDevice[] {
  const devices: PseudoDevice[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) break;
    let path = '';
    let i = 0;
    for (; i < line.length && line[i] !== ' '; i += 1) {
      if (line[i] === '\\' && i + 1 < line.length) i += 1;
      path += line[i];
    }
    const fields = line.slice(i + 1).split(' ');
    if (fields[0] !== 'C' && fields[0] !== 'B') continue;
    const [time, uid, gid, major, minor] = [fields[1], fields[3], fields[4], fields[5], fields[6]].map(Number);
    devices.push({ path, type: fields[0] === 'C' ? 'c' : 'b', mtime: time!, mode: parseInt(fields[2] ?? '0', 8), uid: uid!, gid: gid!, major: major!, minor: minor! });
  }
  return devices;
}

/**
 * Creates, as the host's root, the device nodes an unpack in the user namespace could not
 * (anything but a whiteout), with their owners shifted into the mapping, modes and mtimes as the
 * change set holds them; each parent's mtime is put back after. A path under anything but real
 * directories is refused (never written through a link).
 */
async function createLostDevices(o: { lost: string[]; dest: string; verified: VerifiedChangeSet; mapping: IdMapping; groups: ProcessGroups }): Promise<void> {
  const { lost, dest, verified, mapping, groups } = o;
  if (lost.length === 0) return;
  // unsquashfs cannot write its pseudo file to a socket (a child's stdout here): a file of the host root's.
  const scratch = await mkdtemp(join(tmpdir(), 'cfs-change-set-devices-'));
  let listed: PseudoDevice[];
  try {
    await groups.run('unsquashfs', ['-pf', join(scratch, 'pseudo'), verified.path, ...lost]);
    listed = parsePseudoDevices(await readFile(join(scratch, 'pseudo'), 'utf8'));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  for (const device of listed) {
    if (!lost.includes(device.path)) continue;
    if (!(await parentsAreDirectories(dest, device.path))) throw new ChangeSetFormatError(`change set device /${device.path} is not under plain directories`);
    const path = join(dest, device.path);
    const parent = await lstat(dirname(path));
    await groups.run('mknod', ['-m', (device.mode & 0o777).toString(8), '--', path, device.type, String(device.major), String(device.minor)]);
    await lchown(path, device.uid + mapping.uid, device.gid + mapping.gid);
    await chmod(path, device.mode & 0o7777);
    await lutimes(path, device.mtime, device.mtime);
    await lutimes(dirname(path), parent.atime, parent.mtime);
  }
}

/**
 * Unpacks a verified change set into `dest` (created, empty): as root of the user namespace
 * with `mapping` (so the image's ids land on the mapped host ids; devices it cannot create are
 * made by the host's root after), else as the host's root, after which overlayfs's own trusted
 * xattrs a host-root capture carried are removed.
 */
async function unpack(o: { verified: VerifiedChangeSet; dest: string; workspaceRoot: string; mapping?: IdMapping; groups: ProcessGroups }): Promise<void> {
  const { verified, dest, workspaceRoot, mapping, groups } = o;
  if (mapping) {
    // The namespace's root reopens the descriptor through /proc/self/fd, which checks the file's mode.
    if (((await verified.handle.stat()).mode & 0o004) === 0) throw new ChangeSetFormatError('a change set unpacked in the user namespace must be readable by others (mode 0644, as the capture leaves it)');
  }
  await mkdir(dest, { recursive: true });
  if (!mapping) {
    await groups.run('unsquashfs', ['-no-progress', '-quiet', '-f', '-d', dest, verified.path]);
    const internal = (await dumpXattrs(groups, dest, '^trusted\\.overlay\\.')).filter((e) => e.attributes.size > 0);
    for (const entry of internal) await removeXattrs(groups, join(dest, entry.path), entry.attributes.keys());
    await verified.assertUnchanged();
    return;
  }
  await chownToNamespaceRoot(dest, mapping);
  const relativeDest = relative(workspaceRoot, resolve(dest));
  const [command, args] = userNamespaceArgv(mapping, 'unsquashfs', ['-ignore-errors', '-no-progress', '-quiet', '-f', '-d', relativeDest, '/proc/self/fd/3']);
  const { child, exited } = groups.start(command, args, { cwd: workspaceRoot, stdio: ['ignore', 'ignore', 'pipe', verified.handle.fd] });
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exit = await exited;
  const text = Buffer.concat(stderr).toString('utf8');
  if (exit.code !== 0 && exit.code !== 2) throw new ToolError('unsquashfs', exit, text);
  const losses = unpackLosses(text);
  if (losses.unexpected.length > 0 || (exit.code === 2 && losses.devices.length + losses.xattrs.length === 0)) {
    throw new ToolError('unsquashfs', exit, losses.unexpected.slice(0, 3).join('\n') || text);
  }
  await verified.assertUnchanged();
  const lost = losses.devices.map((path) => relative(relativeDest, path));
  await createLostDevices({ lost, dest, verified, mapping, groups });
}

/** Reads and removes the mtimes file at an unpacked change set's root (it is not part of the image). */
async function takeMtimes(dir: string): Promise<MtimesDocument | undefined> {
  const document = await readMtimesFile(join(dir, MTIMES_FILE));
  if (document) await unlink(join(dir, MTIMES_FILE));
  return document;
}

/** The opaque markers in an unpacked change set, as paths relative to it (found as the host's root, never through a link). */
async function findMarkers(dir: string, groups: ProcessGroups): Promise<string[]> {
  const found = await groups.run('find', ['.', '-name', OPAQUE_MARKER, '-type', 'f', '-print0'], { cwd: dir });
  return found.split('\0').filter(Boolean).map((p) => p.replace(/^\.\//, ''));
}

/**
 * Restores a change set as an overlayfs lower layer in `dir`: checks its sha256 FIRST (a
 * mismatch throws ChangeSetDigestError and writes nothing), unpacks it (in the user namespace
 * with `mapping`, paths relative to `workspaceRoot`, which `dir` must be under), then turns each
 * `.wh..wh..opq` marker into overlayfs's `trusted.overlay.opaque=y` on its directory (as the host's
 * root) and removes it, keeping the directory's mtime. Whiteouts are already character devices
 * 0:0, overlayfs's own form. Last, every entry takes its mtime to the nanosecond from the
 * change set's mtimes file, which is removed.
 */
export async function restoreAsLower(o: {
  changeSet: string;
  dir: string;
  expectedSha256: string;
  workspaceRoot: string;
  mapping?: IdMapping;
  groups: ProcessGroups;
}): Promise<void> {
  const verified = await openVerified(o.changeSet, o.expectedSha256);
  try {
    await unpack({ verified, dest: o.dir, workspaceRoot: o.workspaceRoot, mapping: o.mapping, groups: o.groups });
  } finally {
    await verified.handle.close();
  }
  const mtimes = await takeMtimes(o.dir);
  const markers = await findMarkers(o.dir, o.groups);
  const dirs = markers.map((m) => dirname(m));
  const times = await Promise.all(dirs.map((d) => lstat(join(o.dir, d))));
  const entries: XattrDumpEntry[] = dirs.map((path) => ({ path, attributes: new Map([[OPAQUE_XATTR, '"y"']]) }));
  await restoreXattrs(o.groups, o.dir, entries);
  for (const [i, marker] of markers.entries()) {
    await unlink(join(o.dir, marker));
    await lutimes(join(o.dir, dirs[i]!), times[i]!.atime, times[i]!.mtime);
  }
  // Last: the nanoseconds the squashfs could not keep (removing the files above moved their directories' mtimes).
  if (mtimes) await applyMtimes(o.groups, o.dir, mtimes);
}

/** A directory of the change set whose times are put back once everything is in place. */
interface DirectoryTimes {
  path: string;
  atime: Date;
  mtime: Date;
}

/**
 * Makes the change set's directory `cs` the merged directory: removes its whiteouts and its
 * marker, and (unless it is opaque) moves into it every entry of the tree's directory `rt` the
 * change set does not name; directories named by both are merged the same way, depth first.
 * `rt` is only ever a path whose every component was seen by lstat as a real directory.
 */
async function mergeInto(cs: string, rt: string | undefined, path: string, times: DirectoryTimes[]): Promise<void> {
  const info = await lstat(cs);
  times.push({ path, atime: info.atime, mtime: info.mtime });
  const names = await readdir(cs);
  let opaque = false;
  if (names.includes(OPAQUE_MARKER) && (await lstat(join(cs, OPAQUE_MARKER))).isFile()) {
    opaque = true;
    await unlink(join(cs, OPAQUE_MARKER));
  }
  const kept = opaque ? undefined : rt;
  for (const name of names) {
    if (opaque && name === OPAQUE_MARKER) continue;
    const entry = join(cs, name);
    const entryInfo = await lstat(entry);
    if (isWhiteout(entryInfo)) {
      await unlink(entry);
    } else if (entryInfo.isDirectory()) {
      const below = kept ? await lstat(join(kept, name)).catch(() => undefined) : undefined;
      await mergeInto(entry, below?.isDirectory() ? join(kept!, name) : undefined, join(path, name), times);
    }
  }
  if (!kept) return;
  const named = new Set(names);
  for (const name of await readdir(kept)) {
    if (!named.has(name)) await rename(join(kept, name), join(cs, name));
  }
}

/** Replaces the root's directory entry `name` by the change set's (already merged) entry. */
async function replaceEntry(root: string, cs: string, name: string): Promise<void> {
  await rm(join(root, name), { recursive: true, force: true });
  await rename(join(cs, name), join(root, name));
}

/** The root directory takes the change set's root's owner, mode and xattrs (overlayfs shows the upper's root). */
async function applyRootAttributes(root: string, cs: string, groups: ProcessGroups): Promise<void> {
  const wanted = await lstat(cs);
  await lchown(root, wanted.uid, wanted.gid);
  await chmod(root, wanted.mode & 0o7777);
  const have = (await dumpXattrs(groups, root, '-', { recursive: false }))[0]?.attributes ?? new Map<string, string>();
  const want = (await dumpXattrs(groups, cs, '-', { recursive: false }))[0]?.attributes ?? new Map<string, string>();
  const internal = (name: string) => name.startsWith('trusted.overlay.');
  const stale = [...have.keys()].filter((name) => !want.has(name) && !internal(name));
  await removeXattrs(groups, root, stale);
  const set = new Map([...want].filter(([name, value]) => !internal(name) && have.get(name) !== value));
  await restoreXattrs(groups, root, [{ path: '.', attributes: set }]);
}

/**
 * Merges a change set into a plain tree at `root` without mounting anything (the path where no
 * overlay can be mounted, as on Fargate): checks the sha256 FIRST (ChangeSetDigestError, nothing
 * written), unpacks the change set into `scratch` (an empty directory; when it is not on
 * root's filesystem a hidden directory in the root is used instead, so every move is a rename),
 * then applies it as overlayfs would have: a whiteout removes that path, a marker empties its
 * directory first, every other entry replaces what is there (moved in whole: owners, modes,
 * xattrs, mtimes and hard links stay as unpacked), and a directory both hold keeps the tree's
 * other entries but takes the change set's owner, mode, xattrs and mtime. Every path it writes
 * or removes in the root is reached through real directories only: a symlink in the root is
 * replaced or removed as an entry, never followed.
 */
export async function applyToTree(o: {
  changeSet: string;
  root: string;
  scratch: string;
  expectedSha256: string;
  workspaceRoot: string;
  mapping?: IdMapping;
  groups: ProcessGroups;
}): Promise<void> {
  const { root, scratch, groups } = o;
  const verified = await openVerified(o.changeSet, o.expectedSha256);
  const rootInfo = await lstat(root);
  if (!rootInfo.isDirectory()) throw new ChangeSetFormatError(`the tree ${root} to apply a change set to is not a directory`);
  await mkdir(scratch, { recursive: true });
  const sameFilesystem = (await lstat(scratch)).dev === rootInfo.dev;
  const unpacked = sameFilesystem ? join(scratch, `change-set-${randomUUID()}`) : join(root, `.cfs-change-set-${randomUUID()}`);
  try {
    try {
      await unpack({ verified, dest: unpacked, workspaceRoot: o.workspaceRoot, mapping: o.mapping, groups });
    } finally {
      await verified.handle.close();
    }
    const mtimes = await takeMtimes(unpacked);
    const skip = sameFilesystem ? undefined : basename(unpacked);
    const times: DirectoryTimes[] = [];
    const names = (await readdir(unpacked)).filter((n) => n !== skip);
    const info = await lstat(unpacked);
    const opaque = names.includes(OPAQUE_MARKER) && (await lstat(join(unpacked, OPAQUE_MARKER))).isFile();
    if (opaque) {
      for (const name of await readdir(root)) if (name !== skip) await rm(join(root, name), { recursive: true, force: true });
      await unlink(join(unpacked, OPAQUE_MARKER));
    }
    for (const name of names) {
      if (opaque && name === OPAQUE_MARKER) continue;
      const entry = join(unpacked, name);
      const entryInfo = await lstat(entry);
      if (isWhiteout(entryInfo)) {
        await rm(join(root, name), { recursive: true, force: true });
        continue;
      }
      if (entryInfo.isDirectory()) {
        const below = await lstat(join(root, name)).catch(() => undefined);
        await mergeInto(entry, below?.isDirectory() ? join(root, name) : undefined, name, times);
      }
      await replaceEntry(root, unpacked, name);
    }
    await applyRootAttributes(root, unpacked, groups);
    // The unpacked directory goes before the times are set: when it is in the root, removing it moves the root's mtime.
    await rm(unpacked, { recursive: true, force: true });
    // Moves changed the directories' mtimes: put the change set's back, deepest first.
    for (const dir of times.sort((a, b) => b.path.length - a.path.length)) await lutimes(join(root, dir.path), dir.atime, dir.mtime);
    await lutimes(root, info.atime, info.mtime);
    // Last: the nanoseconds the squashfs could not keep, on the paths the change set named.
    if (mtimes) await applyMtimes(groups, root, mtimes);
  } finally {
    await rm(unpacked, { recursive: true, force: true });
  }
}
