import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { ANSIBLE_PATH } from '../ansible-environment.ts';
import { findOnPath } from '../environment.ts';
import { ToolError, type ProcessGroups } from '../process-groups.ts';
import { ChangeSetFormatError } from './format.ts';

/**
 * Nanosecond mtimes beside a change set's squashfs, which keeps whole seconds: the capture lists
 * every entry's mtime in a file at the change set's root (MTIMES_FILE), and the restores put
 * them back last, so a restored tree has the very mtimes the layer left (make, rsync and
 * Python's bytecode checks compare them).
 */

/** The mtimes file at a change set's root: reserved like the OCI markers, never part of the image. */
export const MTIMES_FILE = '.wh..wh..mtimes';

/** What MTIMES_FILE holds: each path (relative to the root, `.` the root) to its mtime in ns since the epoch, in decimal. */
export interface MtimesDocument {
  version: 1;
  mtime_ns: Record<string, string>;
}

/** The largest mtimes file a restore reads (a layer of 10^6 entries is about 80 MB of it). */
const MAX_MTIMES_BYTES = 256 << 20;

/** `find -printf %T@`'s seconds (signed, then a fraction that is always added) as ns. */
export function parseFindSeconds(text: string): bigint {
  const match = /^(-?\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new ChangeSetFormatError(`find printed the mtime ${JSON.stringify(text)}, not seconds`);
  const fraction = (match[2] ?? '').padEnd(9, '0').slice(0, 9);
  return BigInt(match[1]!) * 1_000_000_000n + BigInt(fraction);
}

/**
 * Every entry's mtime under `dir` (read as the host's root, one find walk that never follows a
 * link), but the paths `skip` names (whiteouts and markers: they are not part of the image).
 */
export async function readMtimes(groups: ProcessGroups, dir: string, skip: ReadonlySet<string> = new Set()): Promise<MtimesDocument> {
  const listed = await groups.run('find', ['.', '-printf', '%T@\\t%p\\0'], { cwd: dir });
  const mtime_ns: Record<string, string> = {};
  for (const record of listed.split('\0')) {
    if (!record) continue;
    const tab = record.indexOf('\t');
    const path = record.slice(tab + 1).replace(/^\.\//, '');
    if (skip.has(path)) continue;
    mtime_ns[path] = parseFindSeconds(record.slice(0, tab)).toString();
  }
  return { version: 1, mtime_ns };
}

/** Reads and checks the mtimes file at `path` (never through a link); undefined when there is none (a change set made before it existed). */
export async function readMtimesFile(path: string): Promise<MtimesDocument | undefined> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    if (error.code === 'ELOOP') throw new ChangeSetFormatError(`the change set's ${MTIMES_FILE} is a symlink`);
    throw error;
  });
  if (!handle) return undefined;
  try {
    const info = await handle.stat();
    if (!info.isFile() || info.size > MAX_MTIMES_BYTES) throw new ChangeSetFormatError(`the change set's ${MTIMES_FILE} is not a regular file of at most ${MAX_MTIMES_BYTES} bytes`);
    const parsed = JSON.parse(await handle.readFile('utf8')) as Partial<MtimesDocument>;
    const entries = parsed.version === 1 && parsed.mtime_ns && typeof parsed.mtime_ns === 'object' ? Object.entries(parsed.mtime_ns) : undefined;
    if (!entries || entries.some(([, ns]) => typeof ns !== 'string' || !/^-?\d{1,30}$/.test(ns))) {
      throw new ChangeSetFormatError(`the change set's ${MTIMES_FILE} is not a version 1 map of paths to nanoseconds`);
    }
    return parsed as MtimesDocument;
  } finally {
    await handle.close();
  }
}

/**
 * Sets each listed entry's mtime (and atime, as unsquashfs does) to the nanosecond, as the host's
 * root, in one python3 run: Node's utimes takes a double of seconds, which cannot carry every
 * nanosecond. Every path is reached from `root` through directories opened with O_NOFOLLOW and
 * set with AT_SYMLINK_NOFOLLOW, so an entry under a symlink (a crafted change set) is skipped,
 * never followed out of the tree; a path that is not there is skipped too. Returns how many were skipped.
 */
export async function applyMtimes(groups: ProcessGroups, root: string, document: MtimesDocument): Promise<number> {
  const entries = Object.entries(document.mtime_ns);
  if (entries.length === 0) return 0;
  const { child, exited } = groups.start(await systemPython(), ['-c', APPLY_SCRIPT, root], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  child.stdin?.on('error', () => {});
  child.stdin?.end(JSON.stringify(entries));
  const exit = await exited;
  if (exit.code !== 0) throw new ToolError('python3 (set mtimes)', exit, Buffer.concat(err).toString('utf8'));
  return Number(Buffer.concat(out).toString('utf8').trim());
}

let python: Promise<string> | undefined;

/**
 * The system's python3 (the first in the standard system directories), looked up once: the
 * runner's PATH may put a version manager's shim first (pyenv's costs 0.3 s a call, measured
 * here), and the runner sets mtimes several times per layer.
 */
function systemPython(): Promise<string> {
  python ??= findOnPath('python3', ANSIBLE_PATH).then((found) => found ?? 'python3');
  return python;
}

// One process for every entry: parents opened with O_NOFOLLOW from the root's descriptor, the
// entry set with utimensat(AT_SYMLINK_NOFOLLOW); ENOENT, ENOTDIR and ELOOP skip the entry.
const APPLY_SCRIPT = `
import errno, json, os, sys
flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
top = os.open(sys.argv[1], flags)
skipped = 0
for path, text in json.load(sys.stdin):
    ns = int(text)
    parts = [p for p in path.split('/') if p not in ('', '.')]
    if '..' in parts:
        skipped += 1
        continue
    opened = []
    try:
        fd = top
        for part in parts[:-1]:
            fd = os.open(part, flags, dir_fd=fd)
            opened.append(fd)
        if parts:
            os.utime(parts[-1], ns=(ns, ns), dir_fd=fd, follow_symlinks=False)
        else:
            os.utime(top, ns=(ns, ns))
    except OSError as error:
        if error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise
        skipped += 1
    finally:
        for fd in opened:
            os.close(fd)
print(skipped)
`;
