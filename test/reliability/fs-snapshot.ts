import { lstatSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every path under `root` with its size and mtime, except the subtrees in `skip` (the database,
 * which rewrites its own files on every request). Two equal snapshots mean nothing was written.
 */
export function snapshotTree(root: string, skip: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (skip.includes(path)) continue;
      const stat = lstatSync(path);
      out.set(relative(root, path), `${stat.isDirectory() ? 'd' : stat.size}:${stat.mtimeMs}`);
      if (stat.isDirectory()) walk(path);
    }
  };
  walk(root);
  return out;
}

/** The paths added, removed or changed between two snapshots. */
export function treeChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed = [...after].filter(([path, v]) => before.get(path) !== v).map(([path]) => path);
  const removed = [...before.keys()].filter((path) => !after.has(path));
  return [...changed, ...removed];
}

/** The places the fuzz's payloads aim at outside its own directory: a marker file and a few host files under /etc. */
export const ATTACK_TARGETS = ['/tmp/cfs-pwned', '/etc', '/etc/passwd', '/etc/shadow', '/etc/hosts'];

/** Each path's size and mtime, or `absent`: equal snapshots mean no payload reached them. */
export function snapshotPaths(paths: string[] = ATTACK_TARGETS): Record<string, string> {
  const out: Record<string, string> = {};
  for (const path of paths) {
    try {
      const stat = lstatSync(path);
      out[path] = `${stat.isDirectory() ? 'd' : stat.size}:${stat.mtimeMs}`;
    } catch {
      out[path] = 'absent';
    }
  }
  return out;
}
