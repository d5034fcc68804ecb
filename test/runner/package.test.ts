import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootCandidates, findBootFile, mksquashfsArgs, resultCompression } from '../../functions/runner/package.ts';
import { estimateUnpackedBytes, parseSquashfsStat } from '../../functions/runner/stage.ts';

describe('resultCompression', () => {
  it('keeps the source compressor and block size by default', () => {
    // Arrange
    const source = { compressor: 'xz', blockSize: 1 << 20 };

    // Act
    const chosen = resultCompression({ compressor: 'source' }, source);

    // Assert
    expect(chosen).toEqual({ compressor: 'xz', blockSize: 1 << 20 });
  });

  it('uses the configured compressor and level, and drops a level the compressor has no option for', () => {
    // Arrange
    const source = { compressor: 'xz', blockSize: 131072 };

    // Act
    const zstd = resultCompression({ compressor: 'zstd', level: 3 }, source);
    const keptXz = resultCompression({ compressor: 'source', level: 3 }, source);

    // Assert
    expect(zstd).toEqual({ compressor: 'zstd', level: 3, blockSize: 131072 });
    expect(keptXz).toEqual({ compressor: 'xz', blockSize: 131072 });
  });

  it("keeps the source's own compression level when the session sets none", () => {
    // Arrange
    const source = { compressor: 'gzip', blockSize: 131072, level: 1 };

    // Act
    const kept = resultCompression({ compressor: 'source' }, source);
    const overridden = resultCompression({ compressor: 'source', level: 9 }, source);

    // Assert
    expect(kept).toEqual({ compressor: 'gzip', level: 1, blockSize: 131072 });
    expect(overridden).toEqual({ compressor: 'gzip', level: 9, blockSize: 131072 });
  });
});

describe('mksquashfsArgs', () => {
  it('never appends, shows no progress and passes compressor, block size and level', () => {
    // Arrange
    const compression = { compressor: 'gzip', level: 1, blockSize: 131072 };

    // Act
    const args = mksquashfsArgs('/ws/images/a', '/ws/results/a.squashfs', compression);

    // Assert
    expect(args).toEqual(['/ws/images/a', '/ws/results/a.squashfs', '-noappend', '-no-progress', '-quiet', '-comp', 'gzip', '-b', '131072', '-Xcompression-level', '1']);
  });
});

describe('bootCandidates', () => {
  it('prefers the stable name, then the newest version by version-aware order, never rescue, kdump or signatures', () => {
    // Arrange
    const names = ['vmlinuz-5.14.21-150400.24.11-default', 'vmlinuz-5.14.21-150400.24.9-default', '.vmlinuz-5.14.21.hmac', 'vmlinuz-0-rescue-abc', 'System.map-5.14', 'initrd-5.14.21-150400.24.11-default', 'initrd-5.14.21-150400.24.11-kdump', 'initramfs-5.14.9.img', 'vmlinuz'];

    // Act
    const kernels = bootCandidates(names, 'kernel', 'x86_64');
    const initrds = bootCandidates(names, 'initrd', 'x86_64');

    // Assert
    expect(kernels).toEqual(['vmlinuz', 'vmlinuz-5.14.21-150400.24.11-default', 'vmlinuz-5.14.21-150400.24.9-default']);
    expect(initrds).toEqual(['initrd-5.14.21-150400.24.11-default', 'initramfs-5.14.9.img']);
  });

  it('looks for Image first on aarch64', () => {
    // Arrange
    const names = ['Image-6.1', 'Image', 'vmlinuz-6.0'];

    // Act
    const kernels = bootCandidates(names, 'kernel', 'aarch64');

    // Assert
    expect(kernels).toEqual(['Image', 'Image-6.1', 'vmlinuz-6.0']);
  });
});

describe('findBootFile', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'cfs-boot-'));
    await mkdir(join(root, 'boot'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('follows the stable symlink inside the root and skips a dangling one', async () => {
    // Arrange
    await writeFile(join(root, 'boot/vmlinuz-1.0'), 'old');
    await writeFile(join(root, 'boot/vmlinuz-2.0'), 'new');
    await symlink('vmlinuz-1.0', join(root, 'boot/vmlinuz'));
    await symlink('/boot/initrd-9.9', join(root, 'boot/initrd'));
    await writeFile(join(root, 'boot/initrd-1.0'), 'initrd');

    // Act
    const kernel = await findBootFile(root, 'kernel', 'x86_64');
    const initrd = await findBootFile(root, 'initrd', 'x86_64');
    const kernelBytes = await kernel?.handle.readFile('utf8');
    await Promise.all([kernel?.handle.close(), initrd?.handle.close()]);

    // Assert
    expect(kernel?.path).toBe(join(root, 'boot/vmlinuz-1.0'));
    expect(kernelBytes).toBe('old');
    expect(initrd?.path).toBe(join(root, 'boot/initrd-1.0'));
  });

  it('resolves /boot itself inside the root: a /boot that links to the host /boot finds nothing of the host', async () => {
    // Arrange
    await rm(join(root, 'boot'), { recursive: true });
    await symlink('/boot', join(root, 'boot'));

    // Act
    const kernel = await findBootFile(root, 'kernel', 'x86_64');

    // Assert
    expect(kernel).toBeUndefined();
  });

  it('finds nothing in a root without /boot files', async () => {
    // Arrange
    await writeFile(join(root, 'boot/config-1.0'), 'x');

    // Act
    const kernel = await findBootFile(root, 'kernel', 'x86_64');

    // Assert
    expect(kernel).toBeUndefined();
  });
});

describe('squashfs metadata', () => {
  it('reads the compressor and block size from unsquashfs -s', () => {
    // Arrange
    const text = 'Found a valid SQUASHFS 4:0 superblock on x.\nCompression zstd\nBlock size 1048576\nFilesystem is exportable via NFS\n';

    // Act
    const info = parseSquashfsStat(text);

    // Assert
    expect(info).toEqual({ compressor: 'zstd', blockSize: 1048576 });
  });

  it('reads a non-default compression level', () => {
    // Arrange
    const text = 'Compression gzip\n\tcompression-level 1\n\twindow-size 15\nBlock size 131072\n';

    // Act
    const info = parseSquashfsStat(text);

    // Assert
    expect(info).toEqual({ compressor: 'gzip', level: 1, blockSize: 131072 });
  });

  it('estimates unpacked size from a listing: files rounded to 4 KiB, a block per directory, plus headroom', () => {
    // Arrange
    const listing = [
      'drwxr-xr-x 0/0                     210 2026-11-26 10:52 squashfs-root',
      'lrwxrwxrwx 0/0                       7 2026-11-26 10:52 squashfs-root/bin -> usr/bin',
      '-rw-r--r-- 0/0                      50 2026-11-26 10:52 squashfs-root/boot/initrd.img-sample',
      '-rwxr-xr-x 0/0                 6831736 2026-11-26 10:52 squashfs-root/usr/bin/python3.11',
    ].join('\n');

    // Act
    const estimate = estimateUnpackedBytes(listing);

    // Assert
    const blocks = 4096 + 4096 + Math.ceil(6831736 / 4096) * 4096;
    expect(estimate).toBe(Math.ceil(blocks * 1.01) + (1 << 20));
  });
});
