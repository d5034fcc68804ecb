import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { isWithin } from './mounts.ts';

/** Symlinks followed at most while resolving one path (Linux's own limit is 40). */
const MAX_HOPS = 40;

function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/** Why a path did not resolve inside its root. */
export type RootPathProblem = 'missing' | 'not-a-directory' | 'loop' | 'escapes' | 'outside';

/**
 * How a path inside `root` resolves, the way the kernel would resolve it if `root` were `/`
 * (openat2's RESOLVE_IN_ROOT): component by component with lstat and readlink, absolute link
 * targets taken from the root, `..` never above it, at most 40 links. `path` is the host path of
 * something under `root` (or a path relative to it). Gives the host path of what it names (no
 * component of which is a symlink), or the problem: a component missing (the last one may be,
 * with `allowMissing`), a file where a directory is needed, too many links.
 *
 * With `escape: 'refuse'` a link that would leave `root` (an absolute target, or `..` above it)
 * is a problem instead of being kept inside: that is how a checkout's links are judged, since
 * the kernel follows them from the real `/` later.
 */
export async function resolvePathInRoot(
  root: string,
  path: string,
  options: { allowMissing?: boolean; escape?: 'contain' | 'refuse' } = {},
): Promise<{ path: string } | { problem: RootPathProblem }> {
  const refuse = options.escape === 'refuse';
  const start = path.startsWith('/') ? (isWithin(path, root) ? relative(root, path) : undefined) : path;
  if (start === undefined) return { problem: 'outside' };
  const resolved: string[] = [];
  const pending = components(start);
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      if (resolved.length === 0 && refuse) return { problem: 'escapes' };
      resolved.pop();
      continue;
    }
    const host = join(root, ...resolved, part);
    const kind = await lstat(host).catch(() => undefined);
    if (!kind) return pending.length === 0 && options.allowMissing ? { path: host } : { problem: 'missing' };
    if (kind.isSymbolicLink()) {
      hops += 1;
      if (hops > MAX_HOPS) return { problem: 'loop' };
      const target = await readlink(host);
      if (target.startsWith('/')) {
        if (refuse) return { problem: 'escapes' };
        resolved.length = 0;
      }
      pending.unshift(...components(target));
      continue;
    }
    if (pending.length > 0 && !kind.isDirectory()) return { problem: 'not-a-directory' };
    resolved.push(part);
  }
  return { path: join(root, ...resolved) };
}

/** resolvePathInRoot's path, or undefined when the path does not resolve inside the root. */
export async function resolveInRoot(root: string, path: string, options: { allowMissing?: boolean } = {}): Promise<string | undefined> {
  const result = await resolvePathInRoot(root, path, options);
  return 'path' in result ? result.path : undefined;
}

/**
 * Opens a regular file named by a path inside `root`, resolved as resolveInRoot does, read-only
 * and without following a last-moment link (O_NOFOLLOW); anything but a regular file is
 * refused. Only for roots no process is changing any more (after the sandbox has exited).
 */
export async function openFileInRoot(root: string, path: string): Promise<{ handle: FileHandle; path: string; size: number } | undefined> {
  const resolved = await resolveInRoot(root, path);
  if (!resolved) return undefined;
  const handle = await open(resolved, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => undefined);
  if (!handle) return undefined;
  const info = await handle.stat();
  if (!info.isFile()) {
    await handle.close();
    return undefined;
  }
  return { handle, path: resolved, size: info.size };
}

/**
 * Every symlink in a directory tree whose target, followed the way the kernel would from the
 * real `/`, leaves the tree (an absolute target, `..` past the top, or through another link that
 * does), as paths relative to the tree. A link that merely dangles inside the tree is not one.
 * `.git` is not walked (git's own files, never a checkout's).
 */
export async function linksLeaving(dir: string): Promise<string[]> {
  const leaving: string[] = [];
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (current === dir && entry.name === '.git') continue;
      if (entry.isSymbolicLink()) {
        const result = await resolvePathInRoot(dir, path, { allowMissing: true, escape: 'refuse' });
        if ('problem' in result && result.problem === 'escapes') leaving.push(relative(dir, path).split(sep).join('/'));
      } else if (entry.isDirectory()) {
        await walk(path);
      }
    }
  };
  await walk(dir);
  return leaving.sort();
}
