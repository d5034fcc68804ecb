import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { RunnerFailure } from './failures.ts';
import type { RunImage } from '../core/workflow/run-document.ts';

/** The tools every run needs; the sandboxed mode also needs unshare and mount, and chrt (the layer cache's background squash). */
export const REQUIRED_TOOLS = ['unsquashfs', 'mksquashfs', 'ansible-playbook', 'git', 'chroot', 'rm', 'umount'] as const;
export const SANDBOX_TOOLS = ['unshare', 'mount', 'chrt'] as const;

/** Node's `process.arch` in the names IMS uses for image arch. */
export function imageArchOf(nodeArch: string): string {
  return ({ x64: 'x86_64', arm64: 'aarch64' } as Record<string, string>)[nodeArch] ?? nodeArch;
}

/** The first executable named `tool` on a PATH string, or undefined. */
export async function findOnPath(tool: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, tool);
    const ok = await access(candidate, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (ok) return candidate;
  }
  return undefined;
}

/** True when a qemu-user binfmt handler for `arch` is registered and enabled, so its binaries run here. */
export async function emulatorRegistered(arch: string, binfmtDir = '/proc/sys/fs/binfmt_misc'): Promise<boolean> {
  const text = await readFile(join(binfmtDir, `qemu-${arch}`), 'utf8').catch(() => '');
  return /^enabled$/m.test(text);
}

/**
 * Fails at once, before any download, when this machine cannot do the run: unpacking with
 * owners, mounting and chroot need root; every tool must be on PATH; each image must be
 * runnable here (same arch, or a registered qemu binfmt emulator).
 */
export async function checkEnvironment(
  images: RunImage[],
  options: { uid: number; nodeArch: string; path: string; sandboxed: boolean; binfmtDir?: string },
): Promise<void> {
  if (options.uid !== 0) {
    throw new RunnerFailure('environment', `the runner must run as root (uid 0) to unpack image roots with their owners, mount and chroot; it runs as uid ${options.uid}`);
  }
  const tools = [...REQUIRED_TOOLS, ...(options.sandboxed ? SANDBOX_TOOLS : [])];
  const missing: string[] = [];
  for (const tool of tools) if (!(await findOnPath(tool, options.path))) missing.push(tool);
  if (missing.length > 0) throw new RunnerFailure('environment', `required tools not found on PATH: ${missing.join(', ')}`);
  const here = imageArchOf(options.nodeArch);
  for (const image of images) {
    if (image.arch === here || (await emulatorRegistered(image.arch, options.binfmtDir))) continue;
    throw new RunnerFailure(
      'environment',
      `image ${image.image_id} is ${image.arch} but this runner is ${here} and no qemu-${image.arch} binfmt emulator is registered`,
      { image: image.image_id },
    );
  }
}
