import { execFile } from 'node:child_process';
import { chmod, lchown, lstat, mkdir, readdir } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { ProcessGroups } from '../process-groups.ts';
import { dumpXattrs, restoreXattrs } from './format.ts';
import { applyMtimes } from './mtimes.ts';

const execFileAsync = promisify(execFile);

/**
 * The overlay mounts of the layer cache: each layer runs on an overlay whose upper directory
 * becomes its change set, and a cached layer's restored change set is a lower layer again.
 * Mounted by the host's root; the layer writes as root of the user namespace (overlayfs does
 * its copy-ups and whiteouts with the mounter's credentials). metacopy and index stay off (a
 * metadata change copies the data too). redirect_dir is on: without it renaming a directory the
 * layer did not create fails with EXDEV (Python's os.rename of /etc did), which a layer on a plain
 * root never meets; a redirect refers to a lower path, so the capture reads a copy of the upper
 * with each redirected directory materialized in full (redirects.ts).
 */
const OVERLAY_OPTIONS = ['redirect_dir=on', 'metacopy=off', 'index=off'];

/** A path overlayfs's option string would misread (its separators), refused before mounting. */
function checkedPath(path: string): string {
  if (/[,:\\\n]/.test(path)) throw new Error(`overlay layer path ${path} holds a ',', ':', '\\' or newline, which a mount option cannot carry`);
  return path;
}

/** The deepest directory all paths are under: the mount runs there, so options name layers by short relative paths (the option string is at most a page). */
function commonDirectory(paths: string[]): string {
  const split = paths.map((p) => resolve(p).split(sep));
  const first = split[0] ?? [''];
  let depth = 0;
  while (depth < first.length - 1 && split.every((parts) => parts.length - 1 > depth && parts[depth] === first[depth])) depth += 1;
  return first.slice(0, depth).join(sep) || sep;
}

async function mountWith(target: string, dirs: { lowers: string[]; upper?: string; work?: string }, readOnly: boolean): Promise<void> {
  if (dirs.lowers.length === 0) throw new Error('an overlay needs at least one lower layer');
  const all = [...dirs.lowers, ...(dirs.upper ? [dirs.upper] : []), ...(dirs.work ? [dirs.work] : [])].map((p) => checkedPath(resolve(p)));
  const cwd = commonDirectory(all);
  const rel = (p: string) => relative(cwd, resolve(p)) || '.';
  // overlayfs lists lower layers top first; the API takes them oldest first.
  const options = [`lowerdir=${[...dirs.lowers].reverse().map(rel).join(':')}`];
  if (dirs.upper && dirs.work) options.push(`upperdir=${rel(dirs.upper)}`, `workdir=${rel(dirs.work)}`);
  options.push(...OVERLAY_OPTIONS);
  if (readOnly) options.push('ro');
  const mount = (extra: string[]) => execFileAsync('mount', ['-t', 'overlay', 'overlay', '-o', [...options, ...extra].join(','), checkedPath(resolve(target))], { cwd });
  if (readOnly) return void (await mount([]));
  // volatile: no syncfs of the upper's filesystem at unmount (0.2 s with 300 MB of the data directory's disk
  // dirty, measured here); the workspace is scratch, lost whole in a crash anyway. Kernels before 5.10 lack it.
  await mount(['volatile']).catch(() => mount([]));
}

/**
 * Mounts a writable overlay at `target` (an existing directory): `lowers` oldest first (the
 * source root, then each restored layer), `upper` the layer's change set (empty), `work`
 * overlayfs's scratch on the upper's filesystem. An empty upper first gets the top lower's
 * root owner, mode, xattrs and mtime: overlayfs shows the upper's root as the merged root, and
 * the layer must see its image's `/` as it was.
 */
export async function mountOverlay(o: { target: string; lowers: string[]; upper: string; work: string; groups?: ProcessGroups }): Promise<void> {
  await mkdir(o.upper, { recursive: true });
  await mkdir(o.work, { recursive: true });
  const topLower = o.lowers[o.lowers.length - 1];
  if (topLower && (await readdir(o.upper)).length === 0) {
    const top = await lstat(topLower, { bigint: true });
    await lchown(o.upper, Number(top.uid), Number(top.gid));
    await chmod(o.upper, Number(top.mode) & 0o7777);
    // The root's xattrs too (an ACL, a security label), but not overlayfs's own.
    const groups = o.groups ?? new ProcessGroups();
    const attributes = (await dumpXattrs(groups, topLower, '-', { recursive: false }))[0]?.attributes ?? new Map<string, string>();
    const kept = new Map([...attributes].filter(([name]) => !name.startsWith('trusted.overlay.')));
    await restoreXattrs(groups, o.upper, [{ path: '.', attributes: kept }]);
    // To the nanosecond, as a change set keeps it.
    await applyMtimes(groups, o.upper, { version: 1, mtime_ns: { '.': top.mtimeNs.toString() } });
  }
  await mountWith(o.target, { lowers: o.lowers, upper: o.upper, work: o.work }, false);
}

/**
 * Mounts a read-only merged view of `lowers` (oldest first) at `target`: the tree as it was
 * before the next layer, to compare against or to read from (a single lower is bound read-only).
 */
export async function mountReadOnlyView(o: { target: string; lowers: string[] }): Promise<void> {
  // overlayfs wants two lower layers when there is no upper: one is a read-only bind.
  if (o.lowers.length === 1) {
    await execFileAsync('mount', ['--bind', '-o', 'ro', checkedPath(resolve(o.lowers[0]!)), checkedPath(resolve(o.target))]);
    return;
  }
  await mountWith(o.target, { lowers: o.lowers }, true);
}

/** Unmounts an overlay; a busy one is detached lazily (its files stay reachable until the last user goes). */
export async function unmountOverlay(target: string): Promise<void> {
  await execFileAsync('umount', [target]).catch(() => execFileAsync('umount', ['--lazy', target]));
}
