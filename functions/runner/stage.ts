import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactStore } from '../ports/artifact-store.ts';
import { RunnerFailure } from './failures.ts';
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
  const sha256 = hash.digest('hex');
  let problem: string | undefined;
  if (size !== artifact.size) {
    problem = `${label} (${artifact.key}) is ${size} bytes, the run document says ${artifact.size}${size < artifact.size ? ' (truncated)' : ''}`;
  } else if (sha256 !== artifact.sha256) {
    problem = `${label} (${artifact.key}) failed its checksum: sha256 ${sha256}, the run document says ${artifact.sha256}`;
  }
  if (problem) {
    await rm(target, { force: true });
    throw new RunnerFailure('staging', problem);
  }
}

/**
 * Stages one source image: checks there is room for the download, downloads and verifies it,
 * reads its compressor, checks there is room for the unpacked root, then unpacks with
 * unsquashfs (as root it keeps owners, modes, xattrs, hard links, symlinks and device nodes)
 * and deletes the download.
 */
export async function stageImage(
  image: RunImage,
  layout: WorkspaceLayout,
  groups: ProcessGroups,
  store: ArtifactStore,
  signal?: AbortSignal,
): Promise<StagedImage> {
  const label = `rootfs of image ${image.image_id}`;
  const download = join(layout.downloads, `${image.image_id}.squashfs`);
  const root = join(layout.images, image.image_id);
  await ensureFreeSpace(layout.root, image.rootfs.size + MIB, `download the ${label} (${mib(image.rootfs.size)} MiB)`);
  await downloadVerified(store, image.rootfs, download, label, signal);

  const corrupt = (error: unknown): never => {
    if (error instanceof ToolError) throw new RunnerFailure('staging', `${label} is not a readable squashfs: ${error.message}`, { image: image.image_id });
    throw error;
  };
  const source = parseSquashfsStat(await groups.run('unsquashfs', ['-s', download]).catch(corrupt));
  const unpacked = await listUnpackedBytes(groups, download).catch(corrupt);
  // The download is deleted once unpacked, which leaves about the room its result will need.
  await ensureFreeSpace(layout.root, unpacked, `unpack the ${label} (about ${mib(unpacked)} MiB unpacked)`);
  await groups.run('unsquashfs', ['-no-progress', '-quiet', '-dest', root, download]).catch(corrupt);
  await rm(download, { force: true });
  return { image, root, source };
}
