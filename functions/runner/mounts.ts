import { readFile } from 'node:fs/promises';

/** One line of /proc/self/mountinfo, the parts the runner uses. */
export interface MountEntry {
  mountPoint: string;
  options: string[];
  fsType: string;
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
    entries.push({
      mountPoint: unescapeMountPath(fields[4] ?? ''),
      options: (fields[5] ?? '').split(','),
      fsType: after.split(' ')[0] ?? '',
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
