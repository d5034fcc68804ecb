import { createHash } from 'node:crypto';
import { sha256OfFile } from '../core/images/verify-artifact.ts';
import { createWriteStream } from 'node:fs';
import { chmod, open, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactStore } from '../ports/artifact-store.ts';
import { deviceNodeOf, unpackLosses, type DeviceNode } from './device-nodes.ts';
import { RunnerFailure } from './failures.ts';
import type { LocalStore } from './local-store.ts';
import { ToolError, type ProcessGroups } from './process-groups.ts';
import type { RunImage } from '../core/workflow/run-document.ts';
import { userNamespaceArgv, type IdMapping } from './user-namespace.ts';
import type { WorkspaceLayout } from './workspace.ts';
import { memoryWorkspaceBytes, mountMemoryRoot, type WorkspaceMemory } from './workspace-memory.ts';

const MIB = 1 << 20;

/** What `unsquashfs -s` tells about a squashfs: the packaging step reuses both by default. */
export interface SquashfsInfo {
  compressor: string;
  blockSize: number;
  /** The level the source was squashed with, when it was not the compressor's default. */
  level?: number;
}

/** A source image unpacked in the workspace. */
export interface StagedImage {
  image: RunImage;
  /** The unpacked root (the inventory host's `ansible_host`). */
  root: string;
  source: SquashfsInfo;
  /** The source's device nodes, which an unpack in a user namespace cannot create: packing writes them back. */
  devices: DeviceNode[];
  /** The root was unpacked into a tmpfs of its own (kept mounted until the workspace is removed). */
  inMemory: boolean;
  /**
   * With the layer cache's overlay path: the directory holding the unpacked source (`base`), the
   * layers' change sets and overlay work dirs (the tmpfs when in RAM); `root` is then an overlay
   * mount point over them.
   */
  stack?: string;
}

/** Reads the compressor, its non-default level and the block size out of `unsquashfs -s` output. */
export function parseSquashfsStat(text: string): SquashfsInfo {
  const compressor = /^Compression (\S+)/m.exec(text)?.[1];
  const blockSize = Number(/^Block size (\d+)/m.exec(text)?.[1]);
  if (!compressor || !Number.isInteger(blockSize) || blockSize <= 0) throw new Error('unsquashfs -s printed no compressor or block size');
  // Only a non-default level is recorded in the superblock's compressor options.
  const level = Number(/^\s+compression-level (\d+)/m.exec(text)?.[1]);
  return { compressor, blockSize, ...(Number.isInteger(level) && level > 0 ? { level } : {}) };
}

/** Disk blocks one `unsquashfs -lln` line stands for: a file rounded up to 4 KiB, a block per directory. */
function listedBytes(line: string): number {
  if (line[0] === 'd') return 4096;
  if (line[0] !== '-') return 0;
  const size = Number(line.split(/\s+/)[2]);
  return Number.isFinite(size) ? Math.ceil(size / 4096) * 4096 : 0;
}

/** Adds 1 % and 1 MiB of filesystem overhead to a block total. */
function withHeadroom(total: number): number {
  return Math.ceil(total * 1.01) + MIB;
}

/**
 * Estimates the disk an unpacked root takes from `unsquashfs -lln` output (a metadata-only
 * listing): regular files rounded up to 4 KiB blocks plus a block per directory, plus 1 % and
 * 1 MiB for filesystem overhead. Errs high on sparse files and hard links, the safe side.
 */
export function estimateUnpackedBytes(listing: string): number {
  return withHeadroom(listing.split('\n').reduce((sum, line) => sum + listedBytes(line), 0));
}

/** The same estimate, read line by line from unsquashfs (a large image lists millions of files), with the image's device nodes. */
async function listUnpacked(groups: ProcessGroups, squashfs: string): Promise<{ bytes: number; devices: DeviceNode[] }> {
  const { child, exited } = groups.start('unsquashfs', ['-lln', squashfs]);
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  let total = 0;
  const devices: DeviceNode[] = [];
  for await (const line of createInterface({ input: child.stdout!, crlfDelay: Infinity })) {
    total += listedBytes(line);
    const device = line[0] === 'c' || line[0] === 'b' ? deviceNodeOf(line) : undefined;
    if (device) devices.push(device);
  }
  const exit = await exited;
  if (exit.code !== 0) throw new ToolError('unsquashfs', exit, Buffer.concat(stderr).toString('utf8'));
  return { bytes: withHeadroom(total), devices };
}

/** Bytes an unprivileged write could still use on the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const info = await statfs(dir);
  return info.bavail * info.bsize;
}

/** Refuses with a message that says what did not fit, where, and by how much. */
export async function ensureFreeSpace(dir: string, needed: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  if (free < needed) {
    throw new RunnerFailure(
      'staging',
      `not enough disk space in ${dir} to ${what}: about ${mib(needed)} MiB needed, ${mib(free)} MiB free`,
    );
  }
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}

/** Why bytes measured as `size` and `sha256` are not the artifact the run document pinned, if they are not. */
function verificationProblem(artifact: { key: string; size: number; sha256: string }, label: string, size: number, sha256: string): string | undefined {
  if (size !== artifact.size) {
    return `${label} (${artifact.key}) is ${size} bytes, the run document says ${artifact.size}${size < artifact.size ? ' (truncated)' : ''}`;
  }
  if (sha256 !== artifact.sha256) return `${label} (${artifact.key}) failed its checksum: sha256 ${sha256}, the run document says ${artifact.sha256}`;
  return undefined;
}

/**
 * Streams an artifact from the store to a file, hashing as it goes, and refuses it unless its
 * size and sha256 match the run document. A refused file is deleted.
 */
export async function downloadVerified(
  store: ArtifactStore,
  artifact: { key: string; size: number; sha256: string },
  target: string,
  label: string,
  signal?: AbortSignal,
): Promise<void> {
  const hash = createHash('sha256');
  let size = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  let source;
  try {
    source = await store.get(artifact.key);
  } catch (error) {
    throw new RunnerFailure('staging', `${label} (${artifact.key}) could not be read from the artifact store: ${(error as Error).message}`);
  }
  try {
    await pipeline(source, measure, createWriteStream(target, { highWaterMark: 4 * MIB }), { signal });
  } catch (error) {
    await rm(target, { force: true });
    throw error;
  }
  const problem = verificationProblem(artifact, label, size, hash.digest('hex'));
  if (problem) {
    await rm(target, { force: true });
    throw new RunnerFailure('staging', problem);
  }
}

/** A source rootfs verified where the local store keeps it, held open until it is unpacked. */
export interface VerifiedInPlace {
  /** The open file as a path other processes can read (`/proc/<pid>/fd/<fd>`): the very file that was hashed. */
  path: string;
  /** The open file's descriptor, to hand to a child (one in a user namespace cannot open another process's fd). */
  fd: number;
  /** Refuses the source if it changed since it was hashed: written to, touched or replaced (its size, mtime or ctime moved). */
  assertUnchanged(): Promise<void>;
  close(): Promise<void>;
}

/** A source rootfs opened in place, its size checked, its sha256 not yet: only its metadata may be read until `verify` resolves. */
export interface OpenedInPlace extends VerifiedInPlace {
  /** Reads the whole file through the open descriptor and refuses it unless its size and sha256 are the run document's. */
  verify(signal?: AbortSignal): Promise<void>;
}

/**
 * Opens a source rootfs in the local store read-only and checks its size (a truncated or grown
 * file is refused without reading it); `verify` then checks its sha256 through that one open
 * file, so what is unpacked next (through /proc/<pid>/fd) is the file that was hashed, never a
 * file put under its key meanwhile; a write into it (or its replacement) moves its ctime, which
 * assertUnchanged checks after unpacking. Nothing is copied, and the store's file is never written.
 */
export async function openInPlace(file: string, artifact: { key: string; size: number; sha256: string }, label: string): Promise<OpenedInPlace> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw new RunnerFailure('staging', `${label} (${artifact.key}) could not be read from the artifact store: ${(error as Error).message}`);
  }
  try {
    const before = await handle.stat();
    if (!before.isFile()) throw new RunnerFailure('staging', `${label} (${artifact.key}) is not a regular file in the artifact store`);
    const problem = before.size === artifact.size ? undefined : verificationProblem(artifact, label, before.size, '');
    if (problem) throw new RunnerFailure('staging', problem);
    return {
      path: `/proc/${process.pid}/fd/${handle.fd}`,
      fd: handle.fd,
      verify: async (signal) => {
        const measured = await sha256OfFile(handle, signal);
        const mismatch = verificationProblem(artifact, label, measured.size, measured.sha256);
        if (mismatch) throw new RunnerFailure('staging', mismatch);
      },
      assertUnchanged: async () => {
        const after = await handle.stat();
        if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || after.ctimeMs !== before.ctimeMs) {
          throw new RunnerFailure('staging', `${label} (${artifact.key}) changed in the artifact store while it was being unpacked; refusing it`);
        }
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** openInPlace, then its sha256 verified before this resolves. */
export async function openVerifiedInPlace(
  file: string,
  artifact: { key: string; size: number; sha256: string },
  label: string,
  signal?: AbortSignal,
): Promise<VerifiedInPlace> {
  const source = await openInPlace(file, artifact, label);
  try {
    await source.verify(signal);
    return source;
  } catch (error) {
    await source.close();
    throw error;
  }
}

/** What staging one image needs. */
export interface StageOptions {
  image: RunImage;
  layout: WorkspaceLayout;
  groups: ProcessGroups;
  store: ArtifactStore;
  /** Set when the store is a local directory: the rootfs is then read in place, not copied. */
  local?: LocalStore;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Set in namespace mode: unsquashfs runs as root of a user namespace with this mapping. */
  mapping?: IdMapping;
  /** A budget that may let the root be unpacked into RAM; none: always on disk. */
  memory?: WorkspaceMemory;
  /**
   * The layer cache's overlay path: unpack into `<stack>/base` (the tmpfs, when granted, mounted
   * at `stack`, so the layers' change sets share the root's grant) instead of at the root.
   */
  stack?: string;
}

/**
 * Stages one source image: verifies its rootfs against the run document's size and sha256
 * (in place when the store is local, else downloaded into the workspace after checking there
 * is room), reads its compressor, checks there is room for the unpacked root, then unpacks it
 * with unsquashfs, which keeps owners, modes, xattrs, hard links and symlinks; in a user
 * namespace (`mapping`) device nodes and privileged xattrs cannot be written: they are listed
 * in the log (devices are written back at packing), and any other unsquashfs error fails the
 * staging. Nothing unverified is unpacked; a download is deleted once unpacked.
 */
export async function stageImage(options: StageOptions): Promise<StagedImage> {
  const { image, layout, groups, store, local, signal, mapping, memory, stack } = options;
  const log = options.log ?? (() => {});
  const place: Placement = { memory, mapping, log, ...(stack ? { stack } : {}) };
  const label = `rootfs of image ${image.image_id}`;
  const root = join(layout.images, image.image_id);
  // The namespace's root reopens the file through /proc/self/fd: it must be readable by others, else it is copied.
  const readable = !local || !mapping || ((await stat(local.pathOf(image.rootfs.key)).catch(() => undefined))?.mode ?? 0) & 0o004;
  if (local && readable) {
    const source = await openInPlace(local.pathOf(image.rootfs.key), image.rootfs, label);
    try {
      // The sha256 is read while unsquashfs reads the source's metadata into the runner (-s, -lln):
      // nothing of it is placed or unpacked before the digest is confirmed.
      const inspecting = inspect(groups, source.path);
      const [verified] = await Promise.allSettled([source.verify(signal), inspecting]);
      if (verified.status === 'rejected') throw verified.reason;
      log(`${label}: sha256 verified in place`);
      const staged = await unpack(image, { path: source.path, fd: source.fd }, inspecting, root, layout, groups, label, place);
      await source.assertUnchanged();
      log(`${label}: unpacked`);
      return staged;
    } finally {
      await source.close();
    }
  }
  const download = join(layout.downloads, `${image.image_id}.squashfs`);
  await ensureFreeSpace(layout.root, image.rootfs.size + MIB, `download the ${label} (${mib(image.rootfs.size)} MiB)`);
  await downloadVerified(store, image.rootfs, download, label, signal);
  log(`${label}: downloaded and sha256 verified`);
  await chmod(download, 0o644);
  const handle = await open(download, 'r');
  try {
    const staged = await unpack(image, { path: download, fd: handle.fd }, inspect(groups, download), root, layout, groups, label, place);
    log(`${label}: unpacked`);
    return staged;
  } finally {
    await handle.close();
    await rm(download, { force: true });
  }
}

/** Where a root may go and who unpacks it. */
interface Placement {
  memory: WorkspaceMemory | undefined;
  mapping: IdMapping | undefined;
  log: (line: string) => void;
  /** Unpack into `<stack>/base`, the tmpfs (if any) at `stack`. */
  stack?: string;
}

/**
 * Puts the root in RAM when the budget grants its unpacked size with room for the layers
 * (a tmpfs mounted at `root`), else on disk after checking there is room there. Says which.
 */
async function placeRoot(root: string, unpackedBytes: number, layout: WorkspaceLayout, label: string, place: Placement): Promise<boolean> {
  if (place.memory) {
    const bytes = memoryWorkspaceBytes(unpackedBytes);
    if (await place.memory.reserve(bytes)) {
      const failed = await mountMemoryRoot(root, bytes, place.mapping);
      if (failed === undefined) {
        place.log(`${label}: unpacking into memory (a tmpfs of ${mib(bytes)} MiB for about ${mib(unpackedBytes)} MiB unpacked)`);
        return true;
      }
      await place.memory.release(bytes);
      place.log(`${label}: cannot mount a tmpfs (${failed}); unpacking on disk`);
    } else {
      place.log(`${label}: unpacking on disk: ${mib(bytes)} MiB does not fit the workspace memory budget now`);
    }
  }
  await ensureFreeSpace(layout.root, unpackedBytes, `unpack the ${label} (about ${mib(unpackedBytes)} MiB unpacked)`);
  return false;
}

/** What unsquashfs reads of a squashfs's metadata: its compressor (`-s`) and its unpacked size and device nodes (`-lln`). */
interface Inspection {
  source: SquashfsInfo;
  listed: { bytes: number; devices: DeviceNode[] };
}

async function inspect(groups: ProcessGroups, squashfs: string): Promise<Inspection> {
  const source = parseSquashfsStat(await groups.run('unsquashfs', ['-s', squashfs]));
  return { source, listed: await listUnpacked(groups, squashfs) };
}

/**
 * Takes a verified squashfs's inspection, puts its root in RAM or on disk, and unpacks it:
 * as the host's root in container mode, else as root of the user namespace (the source handed
 * over as an open descriptor, paths relative to the workspace so no directory above it needs
 * to be searchable by the namespace's root).
 */
async function unpack(
  image: RunImage,
  squashfs: { path: string; fd: number },
  inspection: Promise<Inspection>,
  root: string,
  layout: WorkspaceLayout,
  groups: ProcessGroups,
  label: string,
  place: Placement,
): Promise<StagedImage> {
  const { mapping, log, stack } = place;
  const corrupt = (error: unknown): never => {
    if (error instanceof ToolError) throw new RunnerFailure('staging', `${label} is not a readable squashfs: ${error.message}`, { image: image.image_id });
    throw error;
  };
  const { source, listed } = await inspection.catch(corrupt);
  const inMemory = await placeRoot(stack ?? root, listed.bytes, layout, label, place);
  const target = stack ? join(stack, 'base') : root;
  const stacked = stack ? { stack } : {};
  if (!mapping) {
    await groups.run('unsquashfs', ['-no-progress', '-quiet', '-dest', target, squashfs.path]).catch(corrupt);
    return { image, root, source, devices: [], inMemory, ...stacked };
  }
  const [command, args] = userNamespaceArgv(mapping, 'unsquashfs', ['-ignore-errors', '-no-progress', '-quiet', '-dest', relative(layout.root, target), '/proc/self/fd/3']);
  const { child, exited } = groups.start(command, args, { cwd: layout.root, stdio: ['ignore', 'ignore', 'pipe', squashfs.fd] });
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exit = await exited;
  const text = Buffer.concat(stderr).toString('utf8');
  if (exit.code !== 0 && exit.code !== 2) corrupt(new ToolError('unsquashfs', exit, text));
  const losses = unpackLosses(text);
  if (losses.unexpected.length > 0 || (exit.code === 2 && losses.devices.length + losses.xattrs.length === 0)) {
    const shown = losses.unexpected.length > 0 ? losses.unexpected.slice(0, 3).join(' | ') : `exit ${exit.code} without a reason`;
    throw new RunnerFailure('staging', `${label} could not be unpacked in the user namespace: ${shown}`, { image: image.image_id });
  }
  if (losses.devices.length > 0) log(`${label}: ${losses.devices.length} device node(s) cannot be created in the user namespace; they are written back into the result when it is squashed`);
  if (losses.xattrs.length > 0) {
    const shown = losses.xattrs.slice(0, 10).map((x) => x.replace(/ (images\/[^/]+|stack\/[^/]+\/base)/, ' ')).join(', ');
    log(`${label}: NOT KEPT: ${losses.xattrs.length} xattr(s) only the host's root may set (trusted.*, security.ima): ${shown}${losses.xattrs.length > 10 ? ', ...' : ''}`);
  }
  return { image, root, source, devices: listed.devices, inMemory, ...stacked };
}
