import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, chown, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { INITRD_TYPE, KERNEL_TYPE, ROOTFS_TYPE } from '../core/model/image.ts';
import { measuringStream } from '../adapters/shared/measuring-stream.ts';
import type { ArtifactStore } from '../ports/artifact-store.ts';
import { RunnerFailure } from './failures.ts';
import type { LocalStore } from './local-store.ts';
import { mountsUnder } from './mounts.ts';
import { ToolError, type ProcessGroups } from './process-groups.ts';
import type { BootArtifact, RunDocument, UploadedArtifact } from '../core/workflow/run-document.ts';
import { devicePseudoArgs } from './device-nodes.ts';
import { openFileInRoot, resolveInRoot } from './root-paths.ts';
import { undoRootMounts, type RootMounts } from './sandbox.ts';
import { userNamespaceArgv, type IdMapping } from './user-namespace.ts';
import { ensureFreeSpace, type SquashfsInfo, type StagedImage } from './stage.ts';
import { unmountUnder, type WorkspaceLayout } from './workspace.ts';

/** The compression a result is squashed with. */
export interface ResultCompression {
  compressor: string;
  level?: number;
  blockSize: number;
}

/** Compressors whose mksquashfs option `-Xcompression-level` exists. */
const LEVELLED = new Set(['gzip', 'lzo', 'zstd']);

/**
 * The result's compression: the source's compressor, level and block size by default (boot
 * chains must be able to read the result, and an image imported at a fast level stays fast to
 * rebuild), or the session's setting. A level only applies to compressors that take one.
 */
export function resultCompression(setting: RunDocument['squashfs'], source: SquashfsInfo): ResultCompression {
  const compressor = setting.compressor === 'source' ? source.compressor : setting.compressor;
  const wanted = setting.level ?? (setting.compressor === 'source' ? source.level : undefined);
  const level = wanted !== undefined && LEVELLED.has(compressor) ? wanted : undefined;
  return { compressor, blockSize: source.blockSize, ...(level !== undefined ? { level } : {}) };
}

/** The mksquashfs argv: xattrs and owners are kept (the defaults), no progress bar, never appending. */
export function mksquashfsArgs(root: string, output: string, compression: ResultCompression): string[] {
  const args = [root, output, '-noappend', '-no-progress', '-quiet', '-comp', compression.compressor, '-b', String(compression.blockSize)];
  if (compression.level !== undefined) args.push('-Xcompression-level', String(compression.level));
  return args;
}

const VERSION_ORDER = new Intl.Collator('en', { numeric: true });

/** Versioned file families in /boot, in the order they are preferred. */
function bootFamilies(kind: 'kernel' | 'initrd', arch: string): RegExp[] {
  if (kind === 'initrd') return [/^initrd(\.img)?-(.+)$/, /^initramfs-(.+)\.img$/];
  return arch === 'aarch64' ? [/^Image-(.+)$/, /^vmlinuz-(.+)$/] : [/^vmlinuz-(.+)$/, /^bzImage-(.+)$/];
}

/**
 * Names in /boot to try for the kernel or initrd, best first, as IMS picks them: the stable
 * name (`vmlinuz`/`Image`, `initrd`/`initrd.img`, usually a symlink to the current one) when
 * present, then versioned files of the arch's usual name newest first by version-aware name
 * order. Rescue and kdump images and signature files are never picked.
 */
export function bootCandidates(names: string[], kind: 'kernel' | 'initrd', arch: string): string[] {
  const stable = kind === 'kernel' ? (arch === 'aarch64' ? ['Image', 'vmlinuz'] : ['vmlinuz', 'bzImage']) : ['initrd', 'initrd.img', 'initramfs.img'];
  const excluded = /(\.hmac|\.sig|\.sha\d*|\.old|kdump)$|-rescue-/;
  const candidates = stable.filter((n) => names.includes(n));
  for (const family of bootFamilies(kind, arch)) {
    const members = names.filter((n) => family.test(n) && !excluded.test(n) && !candidates.includes(n));
    candidates.push(...members.sort((a, b) => VERSION_ORDER.compare(b, a)));
  }
  return candidates;
}

/**
 * The kernel or initrd in the root's /boot, opened: a non-empty regular file, every component
 * of its path (/boot itself included) resolved inside the root, so no link at any depth can
 * make the host's files the result's boot files. Only once no layer runs any more.
 */
export async function findBootFile(root: string, kind: 'kernel' | 'initrd', arch: string): Promise<{ handle: FileHandle; path: string } | undefined> {
  const boot = await resolveInRoot(root, 'boot');
  const names = boot ? await readdir(boot).catch(() => [] as string[]) : [];
  for (const name of bootCandidates(names, kind, arch)) {
    const file = await openFileInRoot(root, `boot/${name}`);
    if (file && file.size > 0) return { handle: file.handle, path: file.path };
    await file?.handle.close();
  }
  return undefined;
}

/**
 * Streams bytes to the store, computing size, md5 and sha256 in the same pass, and checks the
 * store's own measurement against them (a store that wrote something else is caught here, not
 * at boot time).
 */
export async function uploadStream(store: ArtifactStore, body: Readable, key: string, contentType: string): Promise<UploadedArtifact> {
  const measure = measuringStream();
  body.on('error', (error) => measure.stream.destroy(error));
  const stored = await store.put(key, body.pipe(measure.stream), { contentType });
  const measured = { key, ...measure.result() };
  if (stored.size !== measured.size || stored.sha256 !== measured.sha256 || stored.md5 !== measured.md5) {
    throw new RunnerFailure('packaging', `the store recorded ${key} as ${stored.size} bytes sha256 ${stored.sha256}, the runner sent ${measured.size} bytes sha256 ${measured.sha256}`);
  }
  return measured;
}

/** Copies one of the source image's boot artifacts under the result's prefix, checking its sha256 on the way. */
async function copySourceArtifact(
  store: ArtifactStore,
  artifact: { key: string; size: number; sha256: string },
  key: string,
  contentType: string,
): Promise<BootArtifact> {
  const copied = await uploadStream(store, await store.get(artifact.key), key, contentType);
  if (copied.size !== artifact.size || copied.sha256 !== artifact.sha256) {
    await store.delete(key);
    throw new RunnerFailure('packaging', `source artifact ${artifact.key} does not match the run document (sha256 ${copied.sha256}, expected ${artifact.sha256})`);
  }
  return { ...copied, from: 'source' };
}

/**
 * Packages one customized root: makes sure nothing is mounted in it and removes the mount
 * points the runner created, squashes it (source compression by default), stores the kernel
 * and initrd from its /boot (falling back to the source image's own), then stores the rootfs
 * while the root, no longer needed, is removed beside it (hashing is CPU work, removing is file
 * system work: on two cores they overlap). With a local store the squashfs is moved into the
 * store and measured there; otherwise it is uploaded and measured on the way.
 */
export async function packageImage(options: {
  staged: StagedImage;
  rootMounts?: RootMounts;
  document: RunDocument;
  layout: WorkspaceLayout;
  groups: ProcessGroups;
  store: ArtifactStore;
  local?: LocalStore;
  log?: (line: string) => void;
  /** Set in namespace mode: mksquashfs runs as root of the user namespace, so the image's owners are written back as they were. */
  mapping?: IdMapping;
  /** Runs once the result is squashed, before anything of it is stored (the boot test): it gets the files that would be registered. */
  beforeStoring?: (files: { rootfs: string; kernel?: string; initrd?: string }) => Promise<void>;
}): Promise<{ uploaded: { rootfs: UploadedArtifact; kernel?: BootArtifact; initrd?: BootArtifact }; compressor: string }> {
  const { staged, document, layout, groups, store, local, mapping } = options;
  const log = options.log ?? (() => {});
  const { image, root } = staged;
  // What the layers' sandboxes left mounted goes; a root unpacked into RAM stays, it holds the files (so does a root that is an overlay).
  if ((await mountsUnder(root)).length > 0) await unmountUnder(root, { keepMemoryRoots: staged.inMemory || staged.stack !== undefined });
  if (options.rootMounts) await undoRootMounts(options.rootMounts);

  const compression = resultCompression(document.squashfs, staged.source);
  const output = join(layout.results, `${image.image_id}.squashfs`);
  await ensureFreeSpace(layout.root, image.rootfs.size, `squash the customized root of image ${image.image_id} (about ${(image.rootfs.size / (1 << 20)).toFixed(1)} MiB)`);
  try {
    if (mapping) {
      const devices = await devicePseudoArgs(root, staged.devices);
      if (devices.lost.length > 0) log(`image ${image.image_id}: NOT KEPT: device node(s) of the source that the result cannot carry: ${devices.lost.join(', ')}`);
      // Relative paths from the workspace: the namespace's root cannot search the directories above it.
      const args = [...mksquashfsArgs(relative(layout.root, root), relative(layout.root, output), compression), ...devices.args];
      const [command, namespaced] = userNamespaceArgv(mapping, 'mksquashfs', args);
      await groups.run(command, namespaced, { cwd: layout.root });
      // The store's files are the host root's.
      await chown(output, 0, 0);
      await chmod(output, 0o644);
      if (devices.args.length > 0) log(`image ${image.image_id}: ${devices.args.length / 2} device node(s) of the source written back`);
    } else {
      await groups.run('mksquashfs', mksquashfsArgs(root, output, compression));
    }
  } catch (error) {
    await rm(output, { force: true });
    if (error instanceof ToolError) throw new RunnerFailure('packaging', `mksquashfs failed for image ${image.image_id}: ${error.message}`, { image: image.image_id });
    throw error;
  }
  log(`image ${image.image_id}: squashed (${compression.compressor}${compression.level !== undefined ? ` level ${compression.level}` : ''})`);

  const packagingError = (what: string, error: unknown): RunnerFailure =>
    error instanceof RunnerFailure ? error : new RunnerFailure('packaging', `${what} of image ${image.image_id} failed: ${(error as Error).message}`, { image: image.image_id });
  const uploadFailure = (what: string) => (error: unknown): never => {
    throw packagingError(`uploading the ${what}`, error);
  };
  // The result's boot files: the root's own when its /boot has them, else the source image's.
  const own = { kernel: await findBootFile(root, 'kernel', image.arch), initrd: await findBootFile(root, 'initrd', image.arch) };
  const fetched: string[] = [];
  let kernel: BootArtifact | undefined;
  let initrd: BootArtifact | undefined;
  try {
    if (options.beforeStoring) {
      // The files exactly as they will be stored: descriptors already open stay the ones read.
      const sourcePath = async (kind: 'kernel' | 'initrd'): Promise<string | undefined> => {
        const source = image[kind];
        if (!source) return undefined;
        if (local) return local.pathOf(source.key);
        const path = join(layout.results, `${image.image_id}.source-${kind}`);
        await pipeline(await store.get(source.key), createWriteStream(path, { mode: 0o644 }));
        fetched.push(path);
        return path;
      };
      const bootPath = async (kind: 'kernel' | 'initrd') => (own[kind] ? `/proc/self/fd/${own[kind].handle.fd}` : await sourcePath(kind));
      await options.beforeStoring({ rootfs: output, kernel: await bootPath('kernel'), initrd: await bootPath('initrd') });
    }
    const storeBootFile = async (kind: 'kernel' | 'initrd', contentType: string): Promise<BootArtifact | undefined> => {
      const key = `${image.upload_prefix}${kind}`;
      const file = own[kind];
      if (file) return { ...(await uploadStream(store, file.handle.createReadStream({ start: 0, autoClose: false }), key, contentType).catch(uploadFailure(kind))), from: 'customized' };
      const source = image[kind];
      return source ? copySourceArtifact(store, source, key, contentType).catch(uploadFailure(kind)) : undefined;
    };
    kernel = await storeBootFile('kernel', KERNEL_TYPE);
    initrd = await storeBootFile('initrd', INITRD_TYPE);
  } finally {
    for (const file of [own.kernel, own.initrd]) await file?.handle.close();
    for (const path of fetched) await rm(path, { force: true });
  }

  const rootfsKey = `${image.upload_prefix}rootfs`;
  const storing = local
    ? local.adopt(rootfsKey, output).then(({ key, size, md5, sha256 }) => ({ key, size, md5, sha256 }))
    : uploadStream(store, createReadStream(output, { highWaterMark: 4 << 20 }), rootfsKey, ROOTFS_TYPE);
  // Both are awaited before anything is thrown, so nothing of this image is still running after.
  const removeRoot = async () => {
    // A root in RAM goes with its tmpfs at once; an overlay root, with the directory of its layers.
    if (staged.inMemory || staged.stack) await unmountUnder(root);
    if (staged.stack) {
      await unmountUnder(staged.stack);
      await groups.run('rm', ['-rf', '--one-file-system', '--', staged.stack]);
    }
    await groups.run('rm', ['-rf', '--one-file-system', '--', root]);
  };
  const [stored, removed] = await Promise.allSettled([storing, removeRoot()]);
  await rm(output, { force: true });
  if (stored.status === 'rejected') throw packagingError('uploading the rootfs', stored.reason);
  if (removed.status === 'rejected') throw packagingError('removing the customized root', removed.reason);
  const rootfs = stored.value;
  log(`image ${image.image_id}: rootfs stored as ${rootfs.key} (${(rootfs.size / (1 << 20)).toFixed(1)} MiB)`);
  return { uploaded: { rootfs, ...(kernel ? { kernel } : {}), ...(initrd ? { initrd } : {}) }, compressor: compression.compressor };
}
