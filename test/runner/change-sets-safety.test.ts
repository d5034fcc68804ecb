import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { captureChangeSet } from '../../functions/runner/change-sets/capture.ts';
import { ChangeSetFormatError, sha256OfFile } from '../../functions/runner/change-sets/format.ts';
import { MTIMES_FILE } from '../../functions/runner/change-sets/mtimes.ts';
import { mountOverlay, unmountOverlay } from '../../functions/runner/change-sets/overlay.ts';
import { applyToTree, ChangeSetDigestError, restoreAsLower } from '../../functions/runner/change-sets/restore.ts';
import { ProcessGroups } from '../../functions/runner/process-groups.ts';
import { rootIdMapping, userNamespaceArgv, type IdMapping } from '../../functions/runner/user-namespace.ts';
import { listTree } from '../helpers/tree-listing.ts';

const run = promisify(execFile);

/**
 * What a change set may never do: be used when its bytes are not the recorded ones, or write or
 * remove anything outside the tree it is applied to, however it was crafted.
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
  ws = await mkdtemp(join(tmpdir(), 'cfs-change-sets-safety-'));
  await chmod(ws, 0o711);
  await mkdir(join(ws, 'results'));
  await chown(join(ws, 'results'), mapping.uid, mapping.gid);
});

afterEach(async () => {
  await rm(ws, { recursive: true, force: true });
});

const exists = (path: string) => lstat(path).then(() => true, () => false);
const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

/** A small change set captured from an upper holding one new file. */
async function smallChangeSet(): Promise<{ path: string; sha256: string }> {
  const upper = join(ws, 'upper');
  await mkdir(upper);
  await writeFile(join(upper, 'new-file'), 'from the layer\n');
  await run('chown', ['-R', `${mapping.uid}:${mapping.gid}`, upper]);
  const path = join(ws, 'results', 'layer.squashfs');
  await captureChangeSet({ upper, output: path, workspaceRoot: ws, mapping, groups });
  return { path, sha256: (await sha256OfFile(path)).sha256 };
}

/** Flips one byte in the middle of a file. */
async function tamper(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const { size } = await handle.stat();
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, Math.floor(size / 2));
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, Math.floor(size / 2));
  } finally {
    await handle.close();
  }
}

describe('a change set whose bytes are not the recorded ones', () => {
  it('is refused by restoreAsLower with ChangeSetDigestError before its directory is even created', async () => {
    // Arrange
    const changeSet = await smallChangeSet();
    await tamper(changeSet.path);
    const dir = join(ws, 'restored');

    // Act
    const restoring = restoreAsLower({ changeSet: changeSet.path, dir, expectedSha256: changeSet.sha256, workspaceRoot: ws, mapping, groups });

    // Assert
    await expect(restoring).rejects.toBeInstanceOf(ChangeSetDigestError);
    await expect(restoring).rejects.toThrow(/has sha256 [0-9a-f]{64}, its entry recorded/);
    expect(await exists(dir)).toBe(false);
  });

  it('is refused by applyToTree before anything in the tree or the scratch directory is written', async () => {
    // Arrange
    const changeSet = await smallChangeSet();
    const root = join(ws, 'root');
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(root, 'etc', 'motd'), 'hello\n');
    const before = await listTree(root);
    const scratch = join(ws, 'scratch');

    // Act
    const applying = applyToTree({ changeSet: changeSet.path, root, scratch, expectedSha256: '0'.repeat(64), workspaceRoot: ws, mapping, groups });

    // Assert
    await expect(applying).rejects.toBeInstanceOf(ChangeSetDigestError);
    expect(await listTree(root)).toEqual(before);
    expect(await exists(scratch)).toBe(false);
  });

  it('is accepted when its sha256 matches, in any letter case', async () => {
    // Arrange
    const changeSet = await smallChangeSet();
    const dir = join(ws, 'restored');

    // Act
    await restoreAsLower({ changeSet: changeSet.path, dir, expectedSha256: changeSet.sha256.toUpperCase(), workspaceRoot: ws, mapping, groups });

    // Assert
    expect(await readFile(join(dir, 'new-file'), 'utf8')).toBe('from the layer\n');
    expect((await lstat(join(dir, 'new-file'))).uid).toBe(mapping.uid);
  });
});

describe('a crafted change set applied to a tree whose symlinks point outside it', () => {
  /**
   * The tree holds `link` and `nested` (symlinks to directories outside it) and `escape` (a
   * symlink to a file outside); the change set writes `link/evil` and `nested/inner/evil`,
   * removes `link/victim` and `escape`, all through those names.
   */
  async function arrange(): Promise<{ root: string; outside: string; changeSet: string; digest: string }> {
    const outside = join(ws, 'outside');
    await mkdir(join(outside, 'inner'), { recursive: true });
    await writeFile(join(outside, 'victim'), 'must survive\n');
    await writeFile(join(outside, 'target-file'), 'must survive too\n');
    const root = join(ws, 'root');
    await mkdir(root);
    await symlink(outside, join(root, 'link'));
    await symlink('../outside', join(root, 'nested'));
    await symlink(join(outside, 'target-file'), join(root, 'escape'));
    const crafted = join(ws, 'crafted');
    await mkdir(join(crafted, 'link'), { recursive: true });
    await mkdir(join(crafted, 'nested', 'inner'), { recursive: true });
    await writeFile(join(crafted, 'link', 'evil'), 'written through a link\n');
    await writeFile(join(crafted, 'nested', 'inner', 'evil'), 'written through a link\n');
    await run('mknod', [join(crafted, 'link', 'victim'), 'c', '0', '0']);
    await run('mknod', [join(crafted, 'escape'), 'c', '0', '0']);
    const changeSet = join(ws, 'crafted.squashfs');
    await run('mksquashfs', [crafted, changeSet, '-noappend', '-quiet', '-no-progress']);
    await chmod(changeSet, 0o644);
    return { root, outside, changeSet, digest: await sha256(changeSet) };
  }

  for (const mode of ['in the user namespace', 'as the host root (no mapping, as in a container)'] as const) {
    it(`writes and removes nothing outside the tree (${mode}): each link is replaced or removed as an entry`, async () => {
      // Arrange
      const { root, outside, changeSet, digest } = await arrange();
      const outsideBefore = await listTree(outside);

      // Act
      await applyToTree({
        changeSet,
        root,
        scratch: join(ws, 'scratch'),
        expectedSha256: digest,
        workspaceRoot: ws,
        ...(mode === 'in the user namespace' ? { mapping } : {}),
        groups,
      });

      // Assert
      expect(await listTree(outside)).toEqual(outsideBefore);
      expect((await lstat(join(root, 'link'))).isDirectory()).toBe(true);
      expect(await readFile(join(root, 'link', 'evil'), 'utf8')).toBe('written through a link\n');
      expect(await exists(join(root, 'link', 'victim'))).toBe(false);
      expect((await lstat(join(root, 'nested', 'inner'))).isDirectory()).toBe(true);
      expect(await exists(join(root, 'escape'))).toBe(false);
      expect(await readFile(join(outside, 'target-file'), 'utf8')).toBe('must survive too\n');
    });
  }
});

describe("a crafted change set's mtimes file", () => {
  /** A change set holding `lnk` (a symlink to a directory outside the tree) and an mtimes file naming paths through it and above the root. */
  async function arrange(mtimesFile: 'file' | 'symlink'): Promise<{ outside: string; changeSet: string; digest: string }> {
    const outside = join(ws, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'victim'), 'its mtime must not move\n');
    await run('touch', ['-d', '@1000000000', join(outside, 'victim'), outside]);
    const crafted = join(ws, 'crafted');
    await mkdir(crafted);
    await symlink(outside, join(crafted, 'lnk'));
    await writeFile(join(crafted, 'own'), 'inside\n');
    const mtime_ns = { 'lnk/victim': '1', lnk: '2', '../outside/victim': '3', own: '1700000000123456789' };
    if (mtimesFile === 'file') await writeFile(join(crafted, MTIMES_FILE), JSON.stringify({ version: 1, mtime_ns }));
    else await symlink(join(outside, 'victim'), join(crafted, MTIMES_FILE));
    const changeSet = join(ws, 'crafted.squashfs');
    await run('mksquashfs', [crafted, changeSet, '-noappend', '-quiet', '-no-progress']);
    await chmod(changeSet, 0o644);
    return { outside, changeSet, digest: await sha256(changeSet) };
  }

  it('sets no time outside the tree, through a symlink or above the root, restored either way, and the entries inside get theirs', async () => {
    // Arrange
    const { outside, changeSet, digest } = await arrange('file');
    const outsideBefore = await listTree(outside);
    const root = join(ws, 'root');
    await mkdir(root);
    const dir = join(ws, 'restored');

    // Act
    await restoreAsLower({ changeSet, dir, expectedSha256: digest, workspaceRoot: ws, mapping, groups });
    await applyToTree({ changeSet, root, scratch: join(ws, 'scratch'), expectedSha256: digest, workspaceRoot: ws, mapping, groups });

    // Assert
    expect(await listTree(outside)).toEqual(outsideBefore);
    for (const tree of [dir, root]) {
      expect((await lstat(join(tree, 'own'), { bigint: true })).mtimeNs).toBe(1700000000123456789n);
      expect((await lstat(join(tree, 'lnk'), { bigint: true })).mtimeNs).toBe(2n);
      expect(await exists(join(tree, MTIMES_FILE))).toBe(false);
    }
  });

  it('is refused when it is a symlink, and read through none', async () => {
    // Arrange
    const { outside, changeSet, digest } = await arrange('symlink');
    const outsideBefore = await listTree(outside);

    // Act
    const restoring = restoreAsLower({ changeSet, dir: join(ws, 'restored'), expectedSha256: digest, workspaceRoot: ws, mapping, groups });

    // Assert
    await expect(restoring).rejects.toThrow(ChangeSetFormatError);
    expect(await listTree(outside)).toEqual(outsideBefore);
  });

  it('is a name no layer may write: the capture refuses a root holding it', async () => {
    // Arrange
    const upper = join(ws, 'upper');
    await mkdir(upper);
    await writeFile(join(upper, MTIMES_FILE), 'the layer made this\n');

    // Act
    const capturing = captureChangeSet({ upper, output: join(ws, 'results', 'layer.squashfs'), workspaceRoot: ws, mapping, groups });

    // Assert
    await expect(capturing).rejects.toThrow(/reserves/);
    expect(await exists(join(ws, 'results', 'layer.squashfs'))).toBe(false);
  });
});

describe('a change set the user namespace cannot read', () => {
  it('is refused with a reason before anything is unpacked', async () => {
    // Arrange
    const changeSet = await smallChangeSet();
    await chmod(changeSet.path, 0o600);
    const dir = join(ws, 'restored');

    // Act
    const restoring = restoreAsLower({ changeSet: changeSet.path, dir, expectedSha256: changeSet.sha256, workspaceRoot: ws, mapping, groups });

    // Assert
    await expect(restoring).rejects.toThrow(/must be readable by others/);
    expect(await exists(dir)).toBe(false);
  });
});

describe('a layer that renames a directory of an earlier layer', () => {
  it('renames it (no EXDEV, as on a plain root) and is refused by the capture: a redirect to a lower path is no tree a change set can hold', async () => {
    // Arrange: a lower with /etc, an overlay mounted as the runner mounts a layer's.
    const lower = join(ws, 'lower');
    await mkdir(join(lower, 'etc'), { recursive: true });
    await writeFile(join(lower, 'etc', 'hosts'), '127.0.0.1 localhost\n');
    await run('chown', ['-R', `${mapping.uid}:${mapping.gid}`, lower]);
    for (const dir of ['upper', 'work', 'merged']) {
      await mkdir(join(ws, dir));
      await chown(join(ws, dir), mapping.uid, mapping.gid);
    }
    await mountOverlay({ target: join(ws, 'merged'), lowers: [lower], upper: join(ws, 'upper'), work: join(ws, 'work'), groups });

    // Act: the layer's rename, as root of the user namespace (Python's os.rename failed with EXDEV before).
    try {
      const [command, args] = userNamespaceArgv(mapping, 'python3', ['-c', `import os; os.rename(${JSON.stringify(join(ws, 'merged', 'etc'))}, ${JSON.stringify(join(ws, 'merged', 'etc.moved'))})`]);
      await run(command, args);
      expect(await readFile(join(ws, 'merged', 'etc.moved', 'hosts'), 'utf8')).toBe('127.0.0.1 localhost\n');
    } finally {
      await unmountOverlay(join(ws, 'merged'));
    }
    const capturing = captureChangeSet({ upper: join(ws, 'upper'), output: join(ws, 'results', 'layer.squashfs'), workspaceRoot: ws, mapping, groups });

    // Assert
    await expect(capturing).rejects.toThrow(ChangeSetFormatError);
    await expect(capturing).rejects.toThrow(/renamed directories it did not create \(\/etc\.moved\)/);
    expect(await exists(join(ws, 'results', 'layer.squashfs'))).toBe(false);
  });
});
