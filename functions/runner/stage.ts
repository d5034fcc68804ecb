import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
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
}

/** A source image unpacked in the workspace. */
export interface StagedImage {
  image: RunImage;
  /** The unpacked root (the inventory host's `ansible_host`). */
  root: string;
  source: SquashfsInfo;
}

/** Reads the compressor and block size out of `unsquashfs -s` output. */
export function parseSquashfsStat(text: string): SquashfsInfo {
  const compressor = /^Compression (\S+)/m.exec(text)?.[1];
  const blockSize = Number(/^Block size (\d+)/m.exec(text)?.[1]);
  if (!compressor || !Number.isInteger(blockSize) || blockSize <= 0) throw new Error('unsquashfs -s printed no compressor or block size');
  return { compressor, blockSize };
}

/**
 * Estimates the disk an unpacked root takes from `unsquashfs -lln` (a metadata-only listing):
 * regular files rounded up to 4 KiB blocks plus a block per directory, plus 1 % and 1 MiB for
 * filesystem overhead. Errs high on sparse files and hard links, which is the safe side.
 */
export function estimateUnpackedBytes(listing: string): number {
  let total = 0;
  for (const line of listing.split('\n')) {
    const kind = line[0];
    if (kind === 'd') {
      total += 4096;
    } else if (kind === '-') {
      const size = Number(line.split(/\s+/)[2]);
      if (Number.isFinite(size)) total += Math.ceil(size / 4096) * 4096;
    }
  }
  return Math.ceil(total * 1.01) + MIB;
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
  const unpacked = estimateUnpackedBytes(await groups.run('unsquashfs', ['-lln', download]).catch(corrupt));
  // The download is deleted once unpacked, which leaves about the room its result will need.
  await ensureFreeSpace(layout.root, unpacked, `unpack the ${label} (about ${mib(unpacked)} MiB unpacked)`);
  await groups.run('unsquashfs', ['-no-progress', '-quiet', '-dest', root, download]).catch(corrupt);
  await rm(download, { force: true });
  return { image, root, source };
}
