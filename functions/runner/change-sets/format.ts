import { createHash } from 'node:crypto';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError, type ProcessGroups } from '../process-groups.ts';

/**
 * What the capture and restore sides of a change set agree on (docs/change-sets.md): the
 * OCI-style opaque-directory marker, what a whiteout is, how names are written for the two
 * tools that take lists (mksquashfs pseudo files, getfattr/setfattr dumps), and the digest.
 */

/** An empty regular file of this name in a directory says: the layers below hide nothing into it (it is opaque). */
export const OPAQUE_MARKER = '.wh..wh..opq';

/** overlayfs's own opaque mark (trusted.*: only the host's root reads or writes it). */
export const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** The same mark in overlayfs's `userxattr` form, which a runner without CAP_SYS_ADMIN (a container) can write. */
export const USER_OPAQUE_XATTR = 'user.overlay.opaque';

/** A removal: a character device numbered 0:0, overlayfs's whiteout. */
export function isWhiteout(info: { isCharacterDevice(): boolean; rdev: number | bigint }): boolean {
  return info.isCharacterDevice() && Number(info.rdev) === 0;
}

/**
 * A path as a mksquashfs 4.5 pseudo-file line takes it: a backslash before each backslash,
 * double quote, space and tab. A newline cannot be carried; such a name is refused.
 */
export function pseudoPath(path: string): string {
  if (/[\n\r]/.test(path)) throw new ChangeSetFormatError(`the name ${JSON.stringify(path)} holds a line break, which a mksquashfs pseudo definition cannot carry`);
  return path.replace(/[\\" \t]/g, (c) => `\\${c}`);
}

/** A file name from getfattr's `# file:` line: getfattr writes a backslash, control characters and newlines as `\ooo`. */
export function decodeDumpName(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i += 1) {
    const octal = text[i] === '\\' ? /^[0-7]{3}/.exec(text.slice(i + 1))?.[0] : undefined;
    if (octal) {
      bytes.push(parseInt(octal, 8));
      i += 3;
      continue;
    }
    const code = text.codePointAt(i)!;
    if (code > 0xffff) i += 1;
    bytes.push(...Buffer.from(String.fromCodePoint(code), 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** A file name for a setfattr `--restore` file: every byte below 0x21, DEL and backslash as `\ooo`. */
export function encodeDumpName(path: string): string {
  return path.replace(/[\x00-\x20\x7f\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** One entry of a getfattr dump: its path and its attributes (values as getfattr printed them). */
export interface XattrDumpEntry {
  path: string;
  attributes: Map<string, string>;
}

/** Parses `getfattr -d` output (`# file: path` then `name=value` lines). */
export function parseXattrDump(text: string): XattrDumpEntry[] {
  const entries: XattrDumpEntry[] = [];
  let current: XattrDumpEntry | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = { path: decodeDumpName(line.slice('# file: '.length)), attributes: new Map() };
      entries.push(current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || !line || eq <= 0) continue;
    current.attributes.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return entries;
}

/**
 * Reads, as the host's root, every attribute whose name matches `pattern` (a getfattr regex)
 * at or below `dir`, in one walk that never follows a symlink. Paths come back relative to
 * `dir` (`.` is `dir` itself).
 */
export async function dumpXattrs(groups: ProcessGroups, dir: string, pattern: string, options: { recursive?: boolean } = {}): Promise<XattrDumpEntry[]> {
  const args = ['-P', '-h', '-d', '-e', 'hex', '-m', pattern];
  if (options.recursive !== false) args.push('-R');
  const text = await groups.run('getfattr', [...args, '.'], { cwd: dir });
  return parseXattrDump(text).map((e) => ({ ...e, path: e.path === '.' ? '.' : e.path.replace(/^\.\//, '') }));
}

/**
 * Sets attributes (values as getfattr printed them) on paths relative to `dir`, in one setfattr
 * run fed on stdin, never following a symlink.
 */
export async function restoreXattrs(groups: ProcessGroups, dir: string, entries: XattrDumpEntry[]): Promise<void> {
  const lines: string[] = [];
  for (const entry of entries) {
    if (entry.attributes.size === 0) continue;
    lines.push(`# file: ${encodeDumpName(entry.path === '.' ? '.' : `./${entry.path}`)}`);
    for (const [name, value] of entry.attributes) lines.push(`${name}=${value}`);
    lines.push('');
  }
  if (lines.length === 0) return;
  const { child, exited } = groups.start('setfattr', ['-h', '--restore=-'], { cwd: dir, stdio: ['pipe', 'ignore', 'pipe'] });
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdin?.on('error', () => {});
  child.stdin?.end(`${lines.join('\n')}\n`);
  const exit = await exited;
  if (exit.code !== 0) throw new ToolError('setfattr', exit, Buffer.concat(stderr).toString('utf8'));
}

/** Removes named attributes from one path (never through a symlink). */
export async function removeXattrs(groups: ProcessGroups, path: string, names: Iterable<string>): Promise<void> {
  for (const name of names) await groups.run('setfattr', ['-h', '-x', name, '--', path]);
}

/** The sha256 of everything an open file holds, read from its start. */
export async function sha256OfHandle(handle: FileHandle): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of handle.createReadStream({ start: 0, autoClose: false, highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The sha256 and size of a file. */
export async function sha256OfFile(path: string): Promise<{ sha256: string; size: number }> {
  const handle = await open(path, 'r');
  try {
    const sha256 = await sha256OfHandle(handle);
    return { sha256, size: (await handle.stat()).size };
  } finally {
    await handle.close();
  }
}

/**
 * Walks a path relative to `base` one component at a time with lstat and says whether every
 * component above the last is a real directory (no symlink, nothing else): the check before
 * the host's root writes at that path in a tree an image's layer (or a crafted change set) made.
 */
export async function parentsAreDirectories(base: string, relativePath: string): Promise<boolean> {
  const parts = relativePath.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) return false;
  let current = base;
  for (const part of parts.slice(0, -1)) {
    current = join(current, part);
    const info = await lstat(current).catch(() => undefined);
    if (!info?.isDirectory()) return false;
  }
  return true;
}

/** A change set that cannot be written or read as the format says. */
export class ChangeSetFormatError extends Error {
  override readonly name = 'ChangeSetFormatError' as const;
}
