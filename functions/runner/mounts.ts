import { readFile } from 'node:fs/promises';

/** One line of /proc/self/mountinfo, the parts the runner uses. */
export interface MountEntry {
  mountPoint: string;
  options: string[];
  fsType: string;
  /** The mount's source (a device, or the name given to a tmpfs). */
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as `\ooo` octal. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses mountinfo text (see proc(5)): field 5 is the mount point, 6 its options, after ` - ` the type. */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [before, after = ''] = line.split(' - ');
    const fields = (before ?? '').split(' ');
    if (fields.length < 6) continue;
    const [fsType = '', source = ''] = after.split(' ');
    entries.push({
      mountPoint: unescapeMountPath(fields[4] ?? ''),
      options: (fields[5] ?? '').split(','),
      fsType,
      source: unescapeMountPath(source),
    });
  }
  return entries;
}

/** The mounts this process sees now, in mount order. */
export async function currentMounts(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** True when `path` is `dir` or inside it (plain string test on normalised absolute paths). */
export function isWithin(path: string, dir: string): boolean {
  const base = dir.endsWith('/') ? dir.slice(0, -1) : dir;
  return path === base || path.startsWith(`${base}/`);
}

/** Mount points at or below `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const points = (await currentMounts()).map((m) => m.mountPoint).filter((p) => isWithin(p, dir));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** The name the runner gives the tmpfs it unpacks a root into (workspace-memory.ts), so it can tell them from other mounts. */
export const MEMORY_ROOT_SOURCE = 'cfs-workspace';

/** The RAM-backed roots the runner mounted at or below `dir`. */
export async function memoryRootsUnder(dir: string): Promise<string[]> {
  return (await currentMounts()).filter((m) => m.fsType === 'tmpfs' && m.source === MEMORY_ROOT_SOURCE && isWithin(m.mountPoint, dir)).map((m) => m.mountPoint);
}

/**
 * The overlay roots at or below `dir` that are image roots (`images/<id>`: the layer cache's
 * overlay path mounts each root so). A layer's sandbox mounts only in namespaces of its own, so
 * an overlay the host sees at such a path is the runner's.
 */
export async function overlayRootsUnder(dir: string): Promise<string[]> {
  return (await currentMounts())
    .filter((m) => m.fsType === 'overlay' && isWithin(m.mountPoint, dir) && /\/images\/[^/]+$/.test(m.mountPoint))
    .map((m) => m.mountPoint);
}
