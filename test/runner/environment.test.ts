import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkEnvironment, imageArchOf } from '../../functions/runner/environment.ts';
import { RUNNER_EXIT_CODES } from '../../functions/runner/failures.ts';
import type { RunImage } from '../../functions/core/workflow/run-document.ts';

const image = (id: string, arch: 'x86_64' | 'aarch64'): RunImage => ({
  image_id: id,
  source_name: id,
  arch,
  rootfs: { key: `boot-images/${id}/rootfs`, size: 1, sha256: 'a'.repeat(64) },
  result_name: `${id}_cfs_s`,
  result_id: `r-${id}`,
  upload_prefix: `boot-images/r-${id}/`,
});

describe('checkEnvironment', () => {
  let binfmt: string;
  const path = process.env.PATH ?? '';

  beforeEach(async () => {
    binfmt = await mkdtemp(join(tmpdir(), 'cfs-binfmt-'));
  });

  afterEach(async () => {
    await rm(binfmt, { recursive: true, force: true });
  });

  it('fails at once with exit code 4 when not root', async () => {
    // Arrange
    const options = { uid: 1000, nodeArch: 'x64', path, sandboxed: true, binfmtDir: binfmt };

    // Act
    const attempt = checkEnvironment([image('a', 'x86_64')], options);

    // Assert
    await expect(attempt).rejects.toMatchObject({ kind: 'environment', exitCode: RUNNER_EXIT_CODES.environment, message: expect.stringMatching(/must run as root.*uid 1000/) });
  });

  it('names the tools missing from PATH', async () => {
    // Arrange
    const options = { uid: 0, nodeArch: 'x64', path: binfmt, sandboxed: true, binfmtDir: binfmt };

    // Act
    const attempt = checkEnvironment([image('a', 'x86_64')], options);

    // Assert
    await expect(attempt).rejects.toThrow(/required tools not found on PATH: unsquashfs, mksquashfs, ansible-playbook, git, chroot, rm, umount, unshare, mount, chrt/);
  });

  it('refuses an image of another arch unless a qemu binfmt emulator for it is enabled', async () => {
    // Arrange
    const images = [image('a', 'x86_64'), image('b', 'aarch64')];
    const options = { uid: 0, nodeArch: 'x64', path, sandboxed: true, binfmtDir: binfmt };

    // Act
    const without = checkEnvironment(images, options);
    await without.catch(() => undefined);
    await writeFile(join(binfmt, 'qemu-aarch64'), 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n');
    const withEmulator = checkEnvironment(images, options);

    // Assert
    await expect(without).rejects.toMatchObject({ context: { image: 'b' }, message: 'image b is aarch64 but this runner is x86_64 and no qemu-aarch64 binfmt emulator is registered' });
    await expect(withEmulator).resolves.toBeUndefined();
  });
});

describe('imageArchOf', () => {
  it('maps node arch names to IMS arch names', () => {
    // Arrange
    const names = ['x64', 'arm64', 'riscv64'];

    // Act
    const mapped = names.map(imageArchOf);

    // Assert
    expect(mapped).toEqual(['x86_64', 'aarch64', 'riscv64']);
  });
});
