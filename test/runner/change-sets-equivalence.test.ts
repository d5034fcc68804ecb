import { execFile } from 'node:child_process';
import { chmod, chown, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { captureChangeSet } from '../../functions/runner/change-sets/capture.ts';
import { sha256OfFile } from '../../functions/runner/change-sets/format.ts';
import { mountOverlay, mountReadOnlyView, unmountOverlay } from '../../functions/runner/change-sets/overlay.ts';
import { materializeRedirects, redirectedDirectories } from '../../functions/runner/change-sets/redirects.ts';
import { applyToTree, restoreAsLower } from '../../functions/runner/change-sets/restore.ts';
import { diffToUpper, snapshotTree } from '../../functions/runner/change-sets/tree-compare.ts';
import { mountsUnder } from '../../functions/runner/mounts.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { rootIdMapping, userNamespaceArgv, type IdMapping } from '../../functions/runner/user-namespace.ts';
import { listTree } from '../helpers/tree-listing.ts';

const run = promisify(execFile);

/**
 * The layer cache's equivalence (issue 19, item 4), for real: a layer runs as root of the user
 * namespace on an overlay (or, as on Fargate, directly on a plain tree that is compared after),
 * its change set is captured with mksquashfs in the namespace, and restoring it both ways
 * (a lower layer of a read-only overlay, and merged into a copy of the base without mounting)
 * gives back exactly the tree the layer left.
 */

let mapping: IdMapping;
let ws: string;
const groups = new ProcessGroups();

beforeAll(async () => {
  const found = await rootIdMapping();
  if ('problem' in found) throw new Error(found.problem);
  mapping = found;
});

beforeEach(async () => {
  ws = await mkdtemp(join(tmpdir(), 'cfs-change-sets-'));
  // As shareWorkspace leaves a workspace: searchable, not listable, by the namespace's root.
  await chmod(ws, 0o711);
  await mkdir(join(ws, 'results'));
  await chown(join(ws, 'results'), mapping.uid, mapping.gid);
});

afterEach(async () => {
  for (const point of await mountsUnder(ws)) await unmountOverlay(point);
  await rm(ws, { recursive: true, force: true });
});

/** A host id for an image id. */
const uid = (id: number) => mapping.uid + id;
const gid = (id: number) => mapping.gid + id;

/**
 * A base image tree as the host's root unpacks one in namespace mode: owned by the mapped ids,
 * with nested directories, a hard-link pair, symlinks, user xattrs, a fifo, a character device
 * and a directory whose name needs escaping in every list format.
 */
async function makeBase(base: string, owners: 'mapped' | 'host' = 'mapped'): Promise<void> {
  const [rootUid, rootGid, userUid, userGid] = owners === 'mapped' ? [uid(0), gid(0), uid(1000), gid(1000)] : [0, 0, 1000, 1000];
  const dirs = ['etc', 'home/user', 'var/olddir/sub', 'opt/app/lib', 'usr/share/deep/er', 'data', 'dev', 'run', 'odd name "q" \\ b'];
  for (const dir of dirs) await mkdir(join(base, dir), { recursive: true });
  const files: Record<string, string> = {
    'etc/config': 'key=value\n',
    'etc/secret': 'hunter2\n',
    'etc/removed': 'gone soon\n',
    'etc/gone "q" \\ z': 'a removal whose name needs escaping\n',
    'home/user/file': 'mine\n',
    'var/olddir/sub/log': 'old log\n',
    'opt/app/lib/lib.so': 'v1 library\n',
    'usr/share/deep/er/doc': 'deep doc\n',
    'usr/file-to-symlink': 'was a file\n',
    'data/a': 'linked\n',
    'data/x': 'with xattr\n',
    'odd name "q" \\ b/inside': 'odd\n',
  };
  for (const [path, content] of Object.entries(files)) await writeFile(join(base, path), content, { mode: 0o644 });
  await link(join(base, 'data/a'), join(base, 'data/b'));
  await symlink('../etc/config', join(base, 'data/rel-link'));
  await symlink('/etc/secret', join(base, 'data/abs-link'));
  await run('setfattr', ['-n', 'user.color', '-v', 'blue', join(base, 'data/x')]);
  await run('setfattr', ['-n', 'user.dir', '-v', 'yes', join(base, 'usr/share')]);
  await run('setfattr', ['-n', 'user.root', '-v', 'top', base]);
  await run('mkfifo', ['-m', '0640', join(base, 'run/fifo')]);
  await run('mknod', ['-m', '0666', join(base, 'dev/char'), 'c', '1', '3']);
  await run('chown', ['-R', '-h', `${rootUid}:${rootGid}`, base]);
  await run('chown', ['-R', `${userUid}:${userGid}`, join(base, 'home/user')]);
  // Fixed mtimes, so a copy made later compares equal.
  await run('find', [base, '-exec', 'touch', '-h', '-d', '2024-01-02 03:04:05', '{}', '+']);
}

/** One layer's work, as root of the user namespace in `dir`: every kind of change a change set must carry. */
const LAYER_SCRIPT = [
  'set -e',
  'echo new > created.txt',
  'mkdir -p brand/new/tree && echo leaf > brand/new/tree/leaf',
  'echo more >> etc/config',
  'chmod 600 etc/secret',
  'chown 1000:1000 home/user/file',
  'rm etc/removed',
  'rm \'etc/gone "q" \\ z\'',
  'rm -rf var/olddir',
  // Made beside the old one before it goes, so it cannot get the old one's inode number back.
  'mkdir -p opt/app.new/bin && echo v2 > opt/app.new/bin/tool && rm -rf opt/app && mv opt/app.new opt/app',
  'rm -rf \'odd name "q" \\ b\' && mkdir \'odd name "q" \\ b\' && echo fresh > \'odd name "q" \\ b/new\'',
  'ln etc/config etc/config-link',
  'echo changed >> data/a',
  'setfattr -n user.x -v hello etc/config',
  'rm usr/file-to-symlink && ln -s /etc/config usr/file-to-symlink',
  'chown 7:7 dev/char',
  // Nanoseconds, which squashfs cannot keep: the change set's mtimes file must.
  'touch -d @1746515289.123456789 usr/share/deep/er/doc',
  // Fails unless the layer sees the root's own xattr; a restore must then drop it from the root.
  'setfattr -x user.root . && setfattr -n user.layer -v 1 .',
].join('\n');

/** Runs the layer as root of the user namespace, or (`host`) as the host's root, as a container's runner does. */
async function runLayer(dir: string, as: 'namespace' | 'host' = 'namespace'): Promise<void> {
  const [command, args] = as === 'namespace' ? userNamespaceArgv(mapping, 'sh', ['-c', LAYER_SCRIPT]) : ['sh', ['-c', LAYER_SCRIPT]];
  await groups.run(command, args, { cwd: dir });
}

/** A copy of a tree with everything (owners, modes, times, xattrs, hard links, devices). */
async function copyTree(from: string, to: string): Promise<void> {
  await run('cp', ['-a', '--preserve=all', from, to]);
}

/**
 * Restores a change set both ways over `base`, in the user namespace: as a lower layer under a
 * read-only overlay view (`view`), and merged into a plain copy of the base (`plain`).
 */
async function restoreBothWays(base: string, changeSet: string, sha256: string): Promise<{ view: string; plain: string }> {
  const restored = join(ws, 'restored');
  await restoreAsLower({ changeSet, dir: restored, expectedSha256: sha256, workspaceRoot: ws, mapping, groups });
  const view = await newDir('view');
  await mountReadOnlyView({ target: view, lowers: [base, restored] });
  const plain = join(ws, 'plain');
  await copyTree(base, plain);
  await applyToTree({ changeSet, root: plain, scratch: join(ws, 'scratch'), expectedSha256: sha256, workspaceRoot: ws, mapping, groups });
  return { view, plain };
}

async function newDir(name: string, owner?: IdMapping): Promise<string> {
  const dir = join(ws, name);
  await mkdir(dir);
  if (owner) await chown(dir, owner.uid, owner.gid);
  return dir;
}

describe('a change set restored from the cache is exactly the tree the layer left', () => {
  it('captured from an overlay upper: restored as a lower layer and merged into a plain copy of the base, both equal the merged tree', async () => {
    // Arrange
    const base = join(ws, 'base');
    await mkdir(base);
    await makeBase(base);
    const merged = await newDir('merged');
    const upper = join(ws, 'upper');
    await mountOverlay({ target: merged, lowers: [base], upper, work: join(ws, 'work') });
    await runLayer(merged);
    const expected = await listTree(merged);
    const output = join(ws, 'results', 'layer.squashfs');

    // Act
    await captureChangeSet({ upper, output, workspaceRoot: ws, mapping, groups });
    const captured = await sha256OfFile(output);
    const { view, plain } = await restoreBothWays(base, output, captured.sha256);

    // Assert
    expect(captured.size).toBeGreaterThan(0);
    expect(captured.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(expected['created.txt']).toMatchObject({ uid: uid(0), content: expect.any(String) });
    expect(expected['etc/removed']).toBeUndefined();
    expect(expected['dev/char']).toMatchObject({ uid: uid(7), rdev: '1:3' });
    // The layer saw its image's / as it was (mountOverlay gives an empty upper the root's metadata, xattrs included).
    expect(expected['']).toMatchObject({ uid: uid(0), gid: gid(0), mode: '755', xattrs: { 'user.layer': '0x31' } });
    expect(expected['usr/share/deep/er/doc']!.mtime).toBe('1746515289123456789');
    expect(await listTree(view)).toEqual(expected);
    expect(await listTree(plain)).toEqual(expected);
  });

  for (const marks of ['xattr-or-files', 'files'] as const) {
    it(`captured by comparing a plain tree before and after the layer (opaque directories marked by ${marks === 'files' ? 'marker files, as where trusted xattrs cannot be written' : 'the overlayfs xattr'}): restored both ways, both equal the tree the layer left`, async () => {
      // Arrange
      const base = join(ws, 'base');
      await mkdir(base);
      await makeBase(base);
      const tree = join(ws, 'tree');
      await copyTree(base, tree);
      const before = await snapshotTree(tree);
      await runLayer(tree);
      const expected = await listTree(tree);
      const upper = await newDir('upper');
      const output = join(ws, 'results', 'layer.squashfs');

      // Act
      const diff = await diffToUpper({ root: tree, before, upper, groups, opaqueMarks: marks });
      await captureChangeSet({ upper, output, workspaceRoot: ws, mapping, groups });
      const captured = await sha256OfFile(output);
      const { view, plain } = await restoreBothWays(base, output, captured.sha256);

      // Assert
      expect(diff.changed).toBeGreaterThan(10);
      expect(expected['data/a']!.linkGroup).toBe('data/a');
      expect(expected['data/b']!.linkGroup).toBe('data/a');
      expect(await listTree(view)).toEqual(expected);
      expect(await listTree(plain)).toEqual(expected);
      const listing = (await run('unsquashfs', ['-lln', output])).stdout;
      expect(listing).toMatch(/^-r--r--r-- 0\/0 +0 .* squashfs-root\/opt\/app\/\.wh\.\.wh\.\.opq$/m);
    });
  }
});

/** A layer renaming directories it did not create (as Python's os.rename does), one with a rename inside it, then writing in them. */
const RENAMING_LAYER_SCRIPT = [
  'set -e',
  `python3 -c "import os; os.rename('opt/app', 'opt/app.moved'); os.rename('usr/share', 'usr/share.moved'); os.rename('usr/share.moved/deep', 'usr/share.moved/deeper')"`,
  'echo patched >> opt/app.moved/lib/lib.so',
  'echo new > usr/share.moved/deeper/er/added',
  'mkdir opt/app && echo replacement > opt/app/note',
].join('\n');

describe('a layer that renames directories of the layers below', () => {
  it('is captured from an upper with the redirects materialized, and both restores give back the merged tree', async () => {
    // Arrange
    const base = join(ws, 'base');
    await mkdir(base);
    await makeBase(base);
    const merged = await newDir('merged');
    const upper = join(ws, 'upper');
    await mountOverlay({ target: merged, lowers: [base], upper, work: join(ws, 'work'), groups });
    const [command, args] = userNamespaceArgv(mapping, 'sh', ['-c', RENAMING_LAYER_SCRIPT]);
    await groups.run(command, args, { cwd: merged });
    const expected = await listTree(merged);
    await unmountOverlay(merged);
    const upperBefore = await listTree(upper);
    const output = join(ws, 'results', 'layer.squashfs');

    // Act
    const materialized = await materializeRedirects({ upper, lowers: [base], work: join(ws, 'materialized'), groups });
    await captureChangeSet({ upper: materialized!, output, workspaceRoot: ws, mapping, groups });
    const captured = await sha256OfFile(output);
    const { view, plain } = await restoreBothWays(base, output, captured.sha256);

    // Assert
    expect((await redirectedDirectories(upper, groups)).sort()).toEqual(['opt/app.moved', 'usr/share.moved', 'usr/share.moved/deeper']);
    expect(expected['opt/app.moved/lib/lib.so']).toMatchObject({ type: 'file' });
    expect(expected['usr/share.moved/deeper/er/doc']).toMatchObject({ type: 'file' });
    expect(expected['usr/share']).toBeUndefined();
    expect(await redirectedDirectories(materialized!, groups)).toEqual([]);
    // The upper is the next layer's lower: the materialized copy changed nothing in it.
    expect(await listTree(upper)).toEqual(upperBefore);
    expect(await listTree(view)).toEqual(expected);
    expect(await listTree(plain)).toEqual(expected);
  });

  it('needs nothing materialized when no directory was renamed', async () => {
    // Arrange
    const upper = await newDir('upper');
    await writeFile(join(upper, 'file'), 'x\n');
    // Act
    const materialized = await materializeRedirects({ upper, lowers: [upper], work: join(ws, 'materialized'), groups });
    // Assert
    expect(materialized).toBeUndefined();
  });
});

describe('the change-set format', () => {
  it('holds image-relative owners, removals as 0:0 character devices owned by the image root, and an empty marker in each opaque directory', async () => {
    // Arrange
    const base = join(ws, 'base');
    await mkdir(base);
    await makeBase(base);
    const merged = await newDir('merged');
    const upper = join(ws, 'upper');
    await mountOverlay({ target: merged, lowers: [base], upper, work: join(ws, 'work') });
    await runLayer(merged);
    const output = join(ws, 'results', 'layer.squashfs');

    // Act
    await captureChangeSet({ upper, output, workspaceRoot: ws, mapping, groups });
    const listing = (await run('unsquashfs', ['-lln', output])).stdout;

    // Assert
    const line = (path: string) => listing.split('\n').find((l) => l.endsWith(` squashfs-root/${path}`)) ?? `(no ${path})`;
    expect(line('created.txt')).toMatch(/^-rw-r--r-- 0\/0 /);
    expect(line('home/user/file')).toMatch(/^-rw-r--r-- 1000\/1000 /);
    expect(line('etc/removed')).toMatch(/^c--------- 0\/0\s+0,\s+0 /);
    expect(line('var/olddir')).toMatch(/^c--------- 0\/0\s+0,\s+0 /);
    expect(line('etc/gone "q" \\ z')).toMatch(/^c--------- 0\/0\s+0,\s+0 /);
    expect(line('opt/app/.wh..wh..opq')).toMatch(/^-r--r--r-- 0\/0\s+0 /);
    expect(line('odd name "q" \\ b/.wh..wh..opq')).toMatch(/^-r--r--r-- 0\/0\s+0 /);
    expect(line('dev/char')).toMatch(/^crw-rw-rw- 7\/7\s+1,\s+3 /);
    expect(listing).not.toContain('squashfs-root/etc/.wh..wh..opq');
    // Every entry's mtime to the nanosecond, in a read-only file of the image's root at the change set's root.
    expect(line('.wh..wh..mtimes')).toMatch(/^-r--r--r-- 0\/0 /);
    const mtimes = JSON.parse((await run('unsquashfs', ['-cat', output, '.wh..wh..mtimes'])).stdout) as { version: number; mtime_ns: Record<string, string> };
    expect(mtimes.version).toBe(1);
    expect(mtimes.mtime_ns['usr/share/deep/er/doc']).toBe('1746515289123456789');
    expect(Object.keys(mtimes.mtime_ns)).toEqual(expect.arrayContaining(['.', 'created.txt', 'etc', 'etc/config']));
    expect(Object.keys(mtimes.mtime_ns)).not.toContain('etc/removed');
    // Only what the layer changed, and the directories above it.
    expect(listing).not.toContain('squashfs-root/run');
    expect(listing).not.toContain('squashfs-root/data/b');
    expect(listing).not.toContain('squashfs-root/var/olddir/');
  });
});

describe('the container path (no user namespace, nothing mounted: as on Fargate)', () => {
  it('a tree-compare change set captured and restored as the host root, both ways, gives back the tree the layer left', async () => {
    // Arrange
    const base = join(ws, 'base');
    await mkdir(base);
    await makeBase(base, 'host');
    const tree = join(ws, 'tree');
    await copyTree(base, tree);
    const before = await snapshotTree(tree);
    await runLayer(tree, 'host');
    const expected = await listTree(tree);
    const upper = await newDir('upper');
    const output = join(ws, 'results', 'layer.squashfs');

    // Act
    await diffToUpper({ root: tree, before, upper, groups });
    await captureChangeSet({ upper, output, workspaceRoot: ws, groups });
    const captured = await sha256OfFile(output);
    const plain = join(ws, 'plain');
    await copyTree(base, plain);
    await applyToTree({ changeSet: output, root: plain, scratch: join(ws, 'scratch'), expectedSha256: captured.sha256, workspaceRoot: ws, groups });
    const restored = join(ws, 'restored');
    await restoreAsLower({ changeSet: output, dir: restored, expectedSha256: captured.sha256, workspaceRoot: ws, groups });
    const view = await newDir('view');
    await mountReadOnlyView({ target: view, lowers: [base, restored] });

    // Assert
    expect(expected['home/user/file']).toMatchObject({ uid: 1000, gid: 1000 });
    expect(await listTree(plain)).toEqual(expected);
    expect(await listTree(view)).toEqual(expected);
    // The comparer ignores overlayfs's own xattrs: none may be left in the merged tree either.
    expect((await run('getfattr', ['-R', '-P', '-h', '-m', '^trusted\\.overlay\\.', '-d', plain])).stdout).toBe('');
  });
});

/** A second layer over the first: undoes some of its work, replaces what it made, and changes the base again. */
const SECOND_LAYER_SCRIPT = [
  'set -e',
  'rm created.txt',
  'rm -rf brand',
  'rm -rf opt/app && mkdir opt/app && echo v3 > opt/app/only',
  'echo third >> etc/config',
  'rm -rf usr/share/deep',
  'mkdir -p usr/share/fresh && echo x > usr/share/fresh/file',
].join('\n');

describe('change sets of stacked layers', () => {
  it('restored one over the other (as lowers, and merged in order into a plain copy) give back the tree after the last layer, an empty layer included', async () => {
    // Arrange
    const base = join(ws, 'base');
    await mkdir(base);
    await makeBase(base);
    const layers = [LAYER_SCRIPT, SECOND_LAYER_SCRIPT, 'true'];
    const uppers: string[] = [];
    const captured: Array<{ path: string; sha256: string }> = [];
    for (const [index, script] of layers.entries()) {
      const merged = await newDir(`merged-${index}`);
      const upper = join(ws, `upper-${index}`);
      await mountOverlay({ target: merged, lowers: [base, ...uppers], upper, work: join(ws, `work-${index}`) });
      const [command, args] = userNamespaceArgv(mapping, 'sh', ['-c', script]);
      await groups.run(command, args, { cwd: merged });
      await unmountOverlay(merged);
      uppers.push(upper);
      const path = join(ws, 'results', `layer-${index}.squashfs`);
      await captureChangeSet({ upper, output: path, workspaceRoot: ws, mapping, groups });
      captured.push({ path, sha256: (await sha256OfFile(path)).sha256 });
    }
    const last = await newDir('last');
    await mountReadOnlyView({ target: last, lowers: [base, ...uppers] });
    const expected = await listTree(last);

    // Act
    const restored: string[] = [];
    for (const [index, changeSet] of captured.entries()) {
      const dir = join(ws, `restored-${index}`);
      await restoreAsLower({ changeSet: changeSet.path, dir, expectedSha256: changeSet.sha256, workspaceRoot: ws, mapping, groups });
      restored.push(dir);
    }
    const view = await newDir('view');
    await mountReadOnlyView({ target: view, lowers: [base, ...restored] });
    const plain = join(ws, 'plain');
    await copyTree(base, plain);
    for (const changeSet of captured) {
      await applyToTree({ changeSet: changeSet.path, root: plain, scratch: join(ws, 'scratch'), expectedSha256: changeSet.sha256, workspaceRoot: ws, mapping, groups });
    }

    // Assert
    expect(expected['created.txt']).toBeUndefined();
    expect(expected['opt/app/only']).toMatchObject({ type: 'file' });
    expect(expected['opt/app/bin']).toBeUndefined();
    expect(expected['usr/share/fresh/file']).toMatchObject({ uid: uid(0) });
    expect(await listTree(view)).toEqual(expected);
    expect(await listTree(plain)).toEqual(expected);
  });
});

describe('a change set merged into a tree on another filesystem than the scratch directory (a root in RAM)', () => {
  it('is unpacked inside the tree instead, leaves nothing of it behind, and gives back the merged tree, the root mtime included', async () => {
    // Arrange
    const base = join(ws, 'base');
    await mkdir(base);
    await makeBase(base);
    const merged = await newDir('merged');
    const upper = join(ws, 'upper');
    await mountOverlay({ target: merged, lowers: [base], upper, work: join(ws, 'work') });
    await runLayer(merged);
    const expected = await listTree(merged);
    const output = join(ws, 'results', 'layer.squashfs');
    await captureChangeSet({ upper, output, workspaceRoot: ws, mapping, groups });
    const captured = await sha256OfFile(output);
    const ram = await newDir('ram');
    await run('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=64m', 'cfs-change-sets-test', ram]);
    const plain = join(ram, 'root');
    await copyTree(base, plain);

    // Act
    await applyToTree({ changeSet: output, root: plain, scratch: join(ws, 'scratch'), expectedSha256: captured.sha256, workspaceRoot: ws, mapping, groups });

    // Assert
    expect(await listTree(plain)).toEqual(expected);
  });
});
