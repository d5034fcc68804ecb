import { spawn } from 'node:child_process';
import { open, stat } from 'node:fs/promises';

/** mksquashfs compressors every boot chain this product targets can read: gzip (IMS's default) and the others mksquashfs offers. */
export const COMPRESSORS = ['gzip', 'xz', 'zstd', 'lz4', 'lzo'] as const;
export type Compressor = (typeof COMPRESSORS)[number];

export interface Compression {
  compressor: Compressor;
  /** gzip 1-9, zstd 1-22; ignored by the others. */
  level?: number;
}

/**
 * gzip (which every boot chain reads) at level 1. Measured on the ~300 MB bench root, 2 cores
 * (BENCHMARKS.md): level 1 packs in 3.0-3.5 s to 76.3 MB, level 6 in 9.8 s to 71.6 MB, level 9 (mksquashfs's
 * default) in 13-16 s to 71.5 MB; unpacking takes the same 0.6 s. Level 1 is 4x faster for 7% more bytes.
 */
export const DEFAULT_COMPRESSION: Compression = { compressor: 'gzip', level: 1 };

const LEVELS: Partial<Record<Compressor, [number, number]>> = { gzip: [1, 9], zstd: [1, 22] };

/** One clear line for a squashfs tool failure. */
export class SquashfsError extends Error {
  override readonly name = 'SquashfsError' as const;
}

/** Runs a tool without a shell; resolves with its exit code, counting stdout lines and keeping the end of stderr. */
function run(command: string, args: string[], onStdout?: (chunk: Buffer) => void, signal?: AbortSignal): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => onStdout?.(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') reject(new SquashfsError(`${command} is not installed (apt-get install squashfs-tools)`));
      else if (error.name === 'AbortError') reject(new SquashfsError(`${command} was interrupted`));
      else reject(error);
    });
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stderr }));
  });
}

function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .pop() ?? 'no output'
  );
}

/** The mksquashfs arguments for a compression setting. */
export function compressionArgs(compression: Compression): string[] {
  const range = LEVELS[compression.compressor];
  if (compression.level !== undefined && range) {
    if (!Number.isInteger(compression.level) || compression.level < range[0] || compression.level > range[1]) {
      throw new SquashfsError(`${compression.compressor} compression level must be ${range[0]}-${range[1]}`);
    }
    return ['-comp', compression.compressor, '-Xcompression-level', String(compression.level)];
  }
  return ['-comp', compression.compressor];
}

/**
 * Packs a directory into a squashfs file with mksquashfs: `-noappend` (never grows an old
 * file), owners, modes and xattrs kept as they are on disk (run as root to read every file and
 * keep every owner), `-processors` left to mksquashfs (all cores).
 */
export async function packRootfs(rootDir: string, target: string, compression: Compression = DEFAULT_COMPRESSION, signal?: AbortSignal): Promise<void> {
  const info = await stat(rootDir).catch(() => undefined);
  if (!info) throw new SquashfsError(`rootfs directory ${rootDir} does not exist`);
  if (!info.isDirectory()) throw new SquashfsError(`rootfs ${rootDir} is not a directory`);
  const { code, stderr } = await run('mksquashfs', [rootDir, target, '-noappend', ...compressionArgs(compression), '-quiet', '-no-progress'], undefined, signal);
  if (code !== 0) throw new SquashfsError(`mksquashfs failed on ${rootDir}: ${lastLine(stderr)}`);
}

/** `bytes_used` from a squashfs 4.0 superblock (little-endian u64 at offset 40), if the file starts with one. */
async function bytesUsedOf(file: string): Promise<number | undefined> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(96);
    const { bytesRead } = await handle.read(header, 0, header.length, 0);
    if (bytesRead < header.length || header.toString('latin1', 0, 4) !== 'hsqs' || header.readUInt16LE(28) !== 4) return undefined;
    return Number(header.readBigUInt64LE(40));
  } finally {
    await handle.close();
  }
}

/** What a check of a squashfs file found. */
export interface SquashfsCheck {
  bytesUsed: number;
  fileSize: number;
  entries: number;
  compressor: string;
}

/**
 * Checks a squashfs file whole before it is uploaded: that the file holds every byte its
 * superblock says the filesystem uses (catches truncation), the superblock (`unsquashfs -s`), and a full
 * listing with attributes (`unsquashfs -lls` with strict errors), which reads and decompresses
 * every inode, directory, id and xattr table. Data blocks are not decompressed here; from upload
 * on, the manifest's sha256 guards them.
 */
export async function checkSquashfs(file: string, signal?: AbortSignal): Promise<SquashfsCheck> {
  const info = await stat(file).catch(() => undefined);
  if (!info) throw new SquashfsError(`squashfs file ${file} does not exist`);
  if (!info.isFile()) throw new SquashfsError(`squashfs ${file} is not a regular file`);

  // The superblock's own size field first: a truncated file is named as such, whatever else fails.
  const claimedSize = await bytesUsedOf(file);
  if (claimedSize === undefined) throw new SquashfsError(`${file} is not a squashfs filesystem (no squashfs superblock)`);
  if (info.size < claimedSize) throw new SquashfsError(`${file} is truncated: ${info.size} bytes, the filesystem needs ${claimedSize}`);

  let superblock = '';
  const stats = await run('unsquashfs', ['-s', file], (chunk) => (superblock += chunk.toString()), signal);
  if (stats.code !== 0) {
    const reason = lastLine(stats.stderr || superblock);
    throw new SquashfsError(/valid SQUASHFS superblock/.test(reason) ? `${file} is not a squashfs filesystem: ${reason}` : `${file} is corrupt: ${reason}`);
  }
  const bytesUsed = Number(/Filesystem size (\d+) bytes/.exec(superblock)?.[1] ?? NaN);
  const compressor = /Compression (\S+)/.exec(superblock)?.[1] ?? 'unknown';
  if (!Number.isFinite(bytesUsed)) throw new SquashfsError(`${file}: unsquashfs -s did not report the filesystem size`);

  let entries = 0;
  const listing = await run(
    'unsquashfs',
    ['-st', '-lls', file],
    (chunk) => {
      for (const byte of chunk) if (byte === 10) entries++;
    },
    signal,
  );
  if (listing.code !== 0) throw new SquashfsError(`${file} is corrupt: ${lastLine(listing.stderr)}`);
  return { bytesUsed, fileSize: info.size, entries, compressor };
}
