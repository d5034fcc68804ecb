import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openVerifiedInPlace } from '../../functions/runner/stage.ts';

let dir: string;
const BYTES = Buffer.from('pretend squashfs bytes\n'.repeat(1000));
const pinned = (key: string, bytes: Buffer) => ({ key, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cfs-stage-in-place-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

describe('openVerifiedInPlace (a source rootfs read where the local store keeps it)', () => {
  it('verifies the stored file and hands out a path that reads the very file it hashed, even after the key is replaced', async () => {
    // Arrange
    const file = join(dir, 'rootfs');
    await writeFile(file, BYTES);
    // Act
    const source = await openVerifiedInPlace(file, pinned('boot-images/i/rootfs', BYTES), 'rootfs of image i');
    const untouched = source.assertUnchanged();
    await untouched;
    await writeFile(join(dir, 'replacement'), 'other bytes');
    await rename(join(dir, 'replacement'), file);
    // Assert
    try {
      await expect(untouched).resolves.toBeUndefined();
      expect(source.path).toMatch(new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
      expect((await readFile(source.path)).equals(BYTES)).toBe(true);
    } finally {
      await source.close();
    }
  });

  it('refuses a file whose bytes do not match the recorded sha256 and leaves it unchanged', async () => {
    // Arrange
    const file = join(dir, 'rootfs');
    const altered = Buffer.from(BYTES);
    altered[100]! ^= 0xff;
    await writeFile(file, altered);
    const before = await stat(file);
    // Act
    const attempt = openVerifiedInPlace(file, pinned('boot-images/i/rootfs', BYTES), 'rootfs of image i');
    // Assert
    await expect(attempt).rejects.toMatchObject({ name: 'RunnerFailure', kind: 'staging', message: expect.stringMatching(/^rootfs of image i \(boot-images\/i\/rootfs\) failed its checksum: sha256 [0-9a-f]{64}, the run document says/) });
    expect((await readFile(file)).equals(altered)).toBe(true);
    const after = await stat(file);
    expect([after.size, after.mtimeMs, after.ctimeMs]).toEqual([before.size, before.mtimeMs, before.ctimeMs]);
  });

  it('refuses a truncated file by its size before reading it', async () => {
    // Arrange
    const file = join(dir, 'rootfs');
    await writeFile(file, BYTES.subarray(0, 10));
    // Act
    const attempt = openVerifiedInPlace(file, pinned('boot-images/i/rootfs', BYTES), 'rootfs of image i');
    // Assert
    await expect(attempt).rejects.toThrow(`is 10 bytes, the run document says ${BYTES.length} (truncated)`);
  });

  it('refuses a file written to after it was verified, even with its size and mtime put back', async () => {
    // Arrange
    const file = join(dir, 'rootfs');
    await writeFile(file, BYTES);
    const source = await openVerifiedInPlace(file, pinned('boot-images/i/rootfs', BYTES), 'rootfs of image i');
    const { atime, mtime } = await stat(file);
    // Act
    await new Promise((resolve) => setTimeout(resolve, 20));
    const altered = Buffer.from(BYTES);
    altered[0]! ^= 0xff;
    await writeFile(file, altered);
    await utimes(file, atime, mtime);
    // Assert
    try {
      await expect(source.assertUnchanged()).rejects.toThrow('rootfs of image i (boot-images/i/rootfs) changed in the artifact store while it was being unpacked; refusing it');
    } finally {
      await source.close();
    }
  });

  it('says the store could not be read when the file is missing', async () => {
    // Act
    const attempt = openVerifiedInPlace(join(dir, 'missing'), pinned('boot-images/i/rootfs', BYTES), 'rootfs of image i');
    // Assert
    await expect(attempt).rejects.toMatchObject({ kind: 'staging', message: expect.stringContaining('could not be read from the artifact store') });
  });
});
