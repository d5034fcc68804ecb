import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../../functions/adapters/local/fs-artifact-store.ts';
import { packageRoot } from '../../functions/adapters/local/package-root.ts';
import { waitFor } from '../helpers/wait.ts';

let root: string;
let store: FsArtifactStore;
const BYTES = Buffer.from('a squashed result\n'.repeat(5000));
const checksums = (bytes: Buffer) => ({ size: bytes.length, md5: createHash('md5').update(bytes).digest('hex'), sha256: createHash('sha256').update(bytes).digest('hex') });

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'fs-store-adopt-'));
  store = new FsArtifactStore(join(root, 'artifacts'));
});
afterEach(async () => rm(root, { recursive: true, force: true }));

describe('FsArtifactStore.adopt and measured', () => {
  it('moves a finished file in under its key, measures it, and answers for it later without a read', async () => {
    // Arrange
    const file = join(root, 'result.squashfs');
    await writeFile(file, BYTES);
    // Act
    const adopted = await store.adopt('boot-images/r/rootfs', file);
    // Assert
    expect(adopted).toEqual({ key: 'boot-images/r/rootfs', ...checksums(BYTES), etag: checksums(BYTES).md5 });
    expect(existsSync(file)).toBe(false);
    expect((await readFile(store.pathOf('boot-images/r/rootfs'))).equals(BYTES)).toBe(true);
    expect(await store.measured('boot-images/r/rootfs')).toEqual(adopted);
    expect(await store.head('boot-images/r/rootfs')).toEqual({ size: BYTES.length, etag: adopted.md5 });
    expect(await readdir(join(root, 'artifacts', 'boot-images', 'r'))).toEqual(['rootfs']);
  });

  it('keeps the checksums of a put too, and forgets them once the file changes, even with size and mtime put back', async () => {
    // Arrange
    const stored = await store.put('boot-images/p/rootfs', BYTES);
    const before = await store.measured('boot-images/p/rootfs');
    const path = store.pathOf('boot-images/p/rootfs');
    const { atime, mtime } = await stat(path);
    const altered = Buffer.from(BYTES);
    altered[7]! ^= 0xff;
    // Act
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(path, altered);
    await utimes(path, atime, mtime);
    const after = await store.measured('boot-images/p/rootfs');
    // Assert
    expect(before).toEqual(stored);
    expect(after).toBeUndefined();
    expect(await store.measured('boot-images/none/rootfs')).toBeUndefined();
  });

  it('leaves no object and no partial file when the move into place fails', async () => {
    // Arrange: a directory where the object must go, as in the reliability fault case.
    const file = join(root, 'result.squashfs');
    await writeFile(file, BYTES);
    await mkdir(join(store.pathOf('boot-images/b/rootfs'), 'blocked'), { recursive: true });
    // Act
    const attempt = store.adopt('boot-images/b/rootfs', file);
    // Assert
    await expect(attempt).rejects.toThrow();
    expect(await readdir(join(root, 'artifacts', 'boot-images', 'b'))).toEqual(['rootfs']);
    expect(await store.measured('boot-images/b/rootfs')).toBeUndefined();
  });

  it('lets a writer killed mid-adopt be swept from its prefix, leaving the objects there alone', async () => {
    // Arrange: a FIFO as the file to adopt, so the child blocks reading it right after the rename
    // to its temporary name; it is killed there, as a runner SIGKILLed while moving its result.
    await store.put('boot-images/k/manifest.json', '{}');
    const fifo = join(root, 'result.squashfs');
    execFileSync('mkfifo', [fifo]);
    const storeModule = pathToFileURL(join(packageRoot(), 'functions/adapters/local/fs-artifact-store.ts')).href;
    const script = `const { FsArtifactStore } = await import(${JSON.stringify(storeModule)}); await new FsArtifactStore(${JSON.stringify(store.root)}).adopt('boot-images/k/rootfs', ${JSON.stringify(fifo)});`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: packageRoot(), stdio: 'ignore' });
    const dir = join(store.root, 'boot-images', 'k');
    await waitFor(async () => (await readdir(dir)).find((name) => name.endsWith('.partial')), 10_000, 'the adopt to rename its file beside the key');
    child.kill('SIGKILL');
    await once(child, 'exit');
    // Act
    await store.discardIncomplete('boot-images/k/');
    // Assert
    expect(await readdir(dir)).toEqual(['manifest.json']);
    expect(await store.list('boot-images/k/')).toEqual(['boot-images/k/manifest.json']);
    // Never the whole store, nor a climb out of it.
    for (const prefix of ['', 'boot-images', '../', 'boot-images/../../']) await expect(store.discardIncomplete(prefix)).rejects.toMatchObject({ name: 'ValidationError' });
  });

  it('copies a file from another filesystem through put, measured the same way', async () => {
    // Arrange
    const other = join(root, 'other-fs');
    await mkdir(other);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', other]);
    try {
      const file = join(other, 'result.squashfs');
      await writeFile(file, BYTES);
      // Act
      const adopted = await store.adopt('boot-images/x/rootfs', file);
      // Assert
      expect(adopted).toMatchObject(checksums(BYTES));
      expect(existsSync(file)).toBe(false);
      expect((await readFile(store.pathOf('boot-images/x/rootfs'))).equals(BYTES)).toBe(true);
      expect(await store.measured('boot-images/x/rootfs')).toEqual(adopted);
    } finally {
      execFileSync('umount', [other]);
    }
  });
});
