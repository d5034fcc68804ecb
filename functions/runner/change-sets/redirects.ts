import { lstat, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ProcessGroups } from '../process-groups.ts';
import { dumpXattrs, OPAQUE_XATTR, restoreXattrs } from './format.ts';
import { applyMtimes } from './mtimes.ts';
import { mountReadOnlyView, unmountOverlay } from './overlay.ts';

/** overlayfs's mark on a directory renamed from a lower layer (redirect_dir=on): the lower path it stands for. */
export const REDIRECT_XATTR = 'trusted.overlay.redirect';

/** The directories of an upper that are redirects to a lower path (read as the host's root), relative to it. */
export async function redirectedDirectories(upper: string, groups: ProcessGroups): Promise<string[]> {
  const found = await dumpXattrs(groups, upper, `^${REDIRECT_XATTR.replace(/\./g, '\\.')}$`);
  return found.filter((e) => e.attributes.has(REDIRECT_XATTR)).map((e) => e.path.replace(/^\.\/?/, ''));
}

/**
 * An upper without redirects, for the capture, when the layer renamed directories it did not
 * create (overlayfs then keeps only a redirect to the lower path, which no change set can hold):
 * `<work>/upper`, a copy of `upper` whose files are hard links to the upper's (no data is
 * copied; nothing of the upper changes, since it stays the next layer's lower), in which each
 * redirected directory is replaced by a full copy of what the merged tree shows there, marked
 * opaque (what the lowers held at that path is hidden, as the redirect hid it). The old name's
 * whiteout is already in the upper. Returns undefined when the upper holds no redirect.
 */
export async function materializeRedirects(o: { upper: string; lowers: string[]; work: string; groups: ProcessGroups }): Promise<string | undefined> {
  const { upper, lowers, work, groups } = o;
  const redirected = await redirectedDirectories(upper, groups);
  if (redirected.length === 0) return undefined;
  // A redirect inside another one is copied with it.
  const tops = redirected.sort().filter((path, i, all) => !all.slice(0, i).some((above) => path.startsWith(`${above}/`)));
  const copy = join(work, 'upper');
  const view = join(work, 'view');
  await rm(work, { recursive: true, force: true });
  // Searchable by others: the capture's mksquashfs runs as root of the user namespace.
  await mkdir(work, { recursive: true, mode: 0o711 });
  await mkdir(view, { mode: 0o700 });
  await groups.run('cp', ['-a', '-l', '--', upper, copy]);
  await mountReadOnlyView({ target: view, lowers: [...lowers, upper] });
  try {
    // The parents' times before their entries are replaced, put back after (to the nanosecond).
    const parentPaths = [...new Set(tops.map((d) => dirname(d)))];
    const parents = { version: 1 as const, mtime_ns: Object.fromEntries(await Promise.all(parentPaths.map(async (p) => [p, (await lstat(join(upper, p), { bigint: true })).mtimeNs.toString()]))) };
    for (const dir of tops) {
      await rm(join(copy, dir), { recursive: true, force: true });
      await groups.run('cp', ['-a', '--', join(view, dir), join(copy, dir)]);
    }
    await restoreXattrs(groups, copy, tops.map((path) => ({ path, attributes: new Map([[OPAQUE_XATTR, '"y"']]) })));
    await applyMtimes(groups, copy, parents);
  } finally {
    await unmountOverlay(view);
  }
  return copy;
}
