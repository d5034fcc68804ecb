import { chmod, chown, lstat, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { ToolError, type ProcessGroups } from '../process-groups.ts';
import { userNamespaceArgv, type IdMapping } from '../user-namespace.ts';
import { ChangeSetFormatError, dumpXattrs, isWhiteout, OPAQUE_MARKER, OPAQUE_XATTR, pseudoPath } from './format.ts';
import { MTIMES_FILE, readMtimes } from './mtimes.ts';
import { redirectedDirectories } from './redirects.ts';

/**
 * The compression of a change set: zstd at level 1. Measured here on 573 MiB of /usr/lib/python3
 * (2 shared cores): zstd -1 8.7 s and 89 MB, lz4 11.3 s and 121 MB (more bytes to write), gzip -1
 * 14.9 s, lzo 91 s. A change set is written once per layer on the cold run, where it must cost
 * little, and read once per reuse.
 */
export const CHANGE_SET_COMPRESSION = ['-comp', 'zstd', '-Xcompression-level', '1'] as const;

/** The empty marker a pseudo definition adds: an empty file from `true`'s output, with its directory's mtime. */
function markerDefinition(dir: string, mtimeSeconds: number): string {
  return `${pseudoPath(dir === '.' ? OPAQUE_MARKER : `${dir}/${OPAQUE_MARKER}`)} F ${mtimeSeconds} 0444 0 0 true`;
}

/**
 * The pseudo definitions that turn an overlayfs upper into the change-set format: an empty
 * `.wh..wh..opq` in each opaque directory (overlayfs marks them with a trusted xattr, which the
 * namespace's root cannot see and unsquashfs there cannot write), and each whiteout owned by the
 * image's root (overlayfs makes them as the host's root, an id the namespace does not map).
 * Found as the host's root: one getfattr walk, one find for character devices.
 */
export async function changeSetPseudoDefinitions(upper: string, groups: ProcessGroups): Promise<{ lines: string[]; opaque: string[]; whiteouts: string[]; markers: string[] }> {
  const opaque: string[] = [];
  for (const entry of await dumpXattrs(groups, upper, `^${OPAQUE_XATTR.replace(/\./g, '\\.')}$`)) {
    // overlayfs writes "y"; "x" (kernel 6.7+) means "holds xwhiteouts", not opaque.
    if (entry.attributes.get(OPAQUE_XATTR) === '0x79' && entry.path !== '.') opaque.push(entry.path);
  }
  const lines: string[] = [];
  for (const dir of opaque.sort()) {
    const marker = join(upper, dir, OPAQUE_MARKER);
    // A marker already there as a file (the tree-compare path's fallback where trusted xattrs cannot be written) is carried as it is.
    if (await lstat(marker).then(() => true, () => false)) continue;
    const info = await lstat(join(upper, dir));
    lines.push(markerDefinition(dir, Math.floor(info.mtimeMs / 1000)));
  }
  // One walk for the whiteouts (character devices, told apart by their number) and the markers already there as files.
  const found = (await groups.run('find', ['.', '(', '-type', 'c', '-o', '-type', 'f', '-name', OPAQUE_MARKER, ')', '-printf', '%y%p\\0'], { cwd: upper })).split('\0').filter(Boolean);
  const whiteouts: string[] = [];
  const markers: string[] = [];
  for (const item of found) {
    const path = item.slice(1).replace(/^\.\//, '');
    if (item[0] === 'f') {
      markers.push(path);
      // Written by whoever made the upper: owned by the image's root, read-only, as the format says.
      lines.push(`${pseudoPath(path)} m 0444 0 0`);
      continue;
    }
    if (!isWhiteout(await lstat(join(upper, path)))) continue;
    whiteouts.push(path);
    lines.push(`${pseudoPath(path)} m 0000 0 0`);
  }
  return { lines, opaque, whiteouts, markers };
}

/**
 * Captures one layer's change set: the overlayfs upper directory `upper` (or the same form built
 * by diffToUpper) squashed into `output` in the change-set format (docs/change-sets.md); its
 * digest is what the store measures as it takes the file (stageLayerRecord). With `mapping`,
 * mksquashfs runs as root of the run's user namespace, so owners are the image's own ids (as
 * packaging does), with paths relative to `workspaceRoot` (the namespace's root cannot search
 * the directories above it): `upper` must be readable by that user from there and `output`'s
 * directory writable by it. The upper is never changed (it may
 * be a lower layer of the next layer's overlay). Every entry's mtime to the nanosecond goes in
 * the mtimes file at the change set's root (mtimes.ts); an upper holding that reserved name, or an
 * overlayfs redirect, is refused (ChangeSetFormatError). The output ends up the host root's, 0644.
 */
export async function captureChangeSet(o: {
  upper: string;
  output: string;
  workspaceRoot: string;
  mapping?: IdMapping;
  groups: ProcessGroups;
  /** Squash at idle CPU priority (SCHED_IDLE): a recording beside a running layer takes only the CPU the layer leaves. */
  idle?: boolean;
}): Promise<void> {
  const { upper, output, workspaceRoot, mapping, groups } = o;
  // A renamed directory of an earlier layer is a redirect to its lower path: not a tree a change set can hold.
  const redirected = await redirectedDirectories(upper, groups);
  if (redirected.length > 0) {
    throw new ChangeSetFormatError(`the layer renamed directories it did not create (${redirected.slice(0, 3).map((p) => `/${p}`).join(', ')}${redirected.length > 3 ? ', ...' : ''}): a change set cannot hold an overlayfs redirect (materializeRedirects makes an upper without them)`);
  }
  if (await lstat(join(upper, MTIMES_FILE)).then(() => true, () => false)) {
    throw new ChangeSetFormatError(`the layer wrote /${MTIMES_FILE}, a name the change-set format reserves`);
  }
  const { lines, whiteouts, markers } = await changeSetPseudoDefinitions(upper, groups);
  // Every entry's mtime to the nanosecond (squashfs keeps seconds), in a file at the change set's root the restores put back and remove.
  const mtimes = await readMtimes(groups, upper, new Set([...whiteouts, ...markers]));
  lines.push(`${MTIMES_FILE} F ${Math.floor(Number(BigInt(mtimes.mtime_ns['.'] ?? '0') / 1_000_000_000n))} 0444 0 0 cat /proc/self/fd/4`);
  const paths = mapping ? { upper: relative(workspaceRoot, resolve(upper)), output: relative(workspaceRoot, resolve(output)) } : { upper, output };
  const args = [paths.upper, paths.output, '-noappend', '-no-progress', '-quiet', ...CHANGE_SET_COMPRESSION];
  // The definitions are handed over as an open file (fd 3): no path the namespace's root would need to reach.
  const scratch = await mkdtemp(join(tmpdir(), 'cfs-change-set-pseudo-'));
  try {
    const pseudo = join(scratch, 'pseudo');
    const mtimesPath = join(scratch, 'mtimes.json');
    // Readable by others: the namespace's root reopens it through /proc/self/fd, which checks the mode.
    await writeFile(pseudo, `${lines.join('\n')}\n`, { mode: 0o644 });
    await writeFile(mtimesPath, `${JSON.stringify(mtimes)}\n`, { mode: 0o644 });
    const handle = await open(pseudo, 'r');
    const mtimesHandle = await open(mtimesPath, 'r');
    try {
      args.push('-pf', '/proc/self/fd/3');
      const [tool, toolArgs] = mapping ? userNamespaceArgv(mapping, 'mksquashfs', args) : ['mksquashfs', args];
      const [command, argv] = o.idle ? ['chrt', ['--idle', '0', tool, ...toolArgs]] : [tool, toolArgs];
      // fd 4 is the mtimes file, which the pseudo definition's `cat` copies in.
      const { child, exited } = groups.start(command, argv, { cwd: mapping ? workspaceRoot : undefined, stdio: ['ignore', 'ignore', 'pipe', handle.fd, mtimesHandle.fd] });
      const stderr: Buffer[] = [];
      child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
      const exit = await exited;
      if (exit.code !== 0) {
        await rm(output, { force: true });
        throw new ToolError('mksquashfs', exit, Buffer.concat(stderr).toString('utf8'));
      }
    } finally {
      await handle.close();
      await mtimesHandle.close();
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  // The store's files are the host root's.
  await chown(output, 0, 0);
  await chmod(output, 0o644);
}
