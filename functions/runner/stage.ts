import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rm, statfs, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactStore } from '../ports/artifact-store.ts';
import { RunnerFailure } from './failures.ts';
import type { LocalStore } from './local-store.ts';
import { ToolError, type ProcessGroups } from './process-groups.ts';
import type { RunImage } from './run-document.ts';
import type { WorkspaceLayout } from './workspace.ts';

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

/** The same estimate, read line by line from unsquashfs (a large image lists millions of files). */
async function listUnpackedBytes(groups: ProcessGroups, squashfs: string): Promise<number> {
  const { child, exited } = groups.start('unsquashfs', ['-lln', squashfs]);
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  let total = 0;
  for await (const line of createInterface({ input: child.stdout!, crlfDelay: Infinity })) total += listedBytes(line);
  const exit = await exited;
  if (exit.code !== 0) throw new ToolError('unsquashfs', exit, Buffer.concat(stderr).toString('utf8'));
  return withHeadroom(total);
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
  /** Refuses the source if it changed since it was hashed: written to, touched or replaced (its size, mtime or ctime moved). */
  assertUnchanged(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a source rootfs in the local store read-only and checks its size and sha256 through
 * that one open file, so what is unpacked next (through /proc/<pid>/fd) is the file that was
 * hashed, never a file put under its key meanwhile; a write into it (or its replacement) moves
 * its ctime, which assertUnchanged checks after unpacking. Nothing is copied, and the store's
 * file is never written.
 */
export async function openVerifiedInPlace(
  file: string,
  artifact: { key: string; size: number; sha256: string },
  label: string,
  signal?: AbortSignal,
): Promise<VerifiedInPlace> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw new RunnerFailure('staging', `${label} (${artifact.key}) could not be read from the artifact store: ${(error as Error).message}`);
  }
  try {
    const before = await handle.stat();
    if (!before.isFile()) throw new RunnerFailure('staging', `${label} (${artifact.key}) is not a regular file in the artifact store`);
    // The size first: a truncated or grown file is refused without reading it.
    let problem = before.size === artifact.size ? undefined : verificationProblem(artifact, label, before.size, '');
    if (!problem) {
      const hash = createHash('sha256');
      for await (const chunk of handle.createReadStream({ start: 0, autoClose: false, highWaterMark: 4 * MIB })) {
        signal?.throwIfAborted();
        hash.update(chunk as Buffer);
      }
      problem = verificationProblem(artifact, label, before.size, hash.digest('hex'));
    }
    if (problem) throw new RunnerFailure('staging', problem);
    return {
      path: `/proc/${process.pid}/fd/${handle.fd}`,
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
}

/**
 * Stages one source image: verifies its rootfs against the run document's size and sha256
 * (in place when the store is local, else downloaded into the workspace after checking there
 * is room), reads its compressor, checks there is room for the unpacked root, then unpacks it
 * with unsquashfs (as root it keeps owners, modes, xattrs, hard links, symlinks and device
 * nodes). Nothing unverified is unpacked; a download is deleted once unpacked.
 */
export async function stageImage(options: StageOptions): Promise<StagedImage> {
  const { image, layout, groups, store, local, signal } = options;
  const log = options.log ?? (() => {});
  const label = `rootfs of image ${image.image_id}`;
  const root = join(layout.images, image.image_id);
  if (local) {
    const source = await openVerifiedInPlace(local.pathOf(image.rootfs.key), image.rootfs, label, signal);
    try {
      log(`${label}: sha256 verified in place`);
      const staged = await unpack(image, source.path, root, layout, groups, label);
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
  const staged = await unpack(image, download, root, layout, groups, label);
  log(`${label}: unpacked`);
  await rm(download, { force: true });
  return staged;
}

/** Reads a verified squashfs's compressor, checks there is room for its root, and unpacks it. */
async function unpack(image: RunImage, squashfs: string, root: string, layout: WorkspaceLayout, groups: ProcessGroups, label: string): Promise<StagedImage> {
  const corrupt = (error: unknown): never => {
    if (error instanceof ToolError) throw new RunnerFailure('staging', `${label} is not a readable squashfs: ${error.message}`, { image: image.image_id });
    throw error;
  };
  const source = parseSquashfsStat(await groups.run('unsquashfs', ['-s', squashfs]).catch(corrupt));
  const unpacked = await listUnpackedBytes(groups, squashfs).catch(corrupt);
  await ensureFreeSpace(layout.root, unpacked, `unpack the ${label} (about ${mib(unpacked)} MiB unpacked)`);
  await groups.run('unsquashfs', ['-no-progress', '-quiet', '-dest', root, squashfs]).catch(corrupt);
  return { image, root, source };
}
