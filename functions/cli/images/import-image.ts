import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageArchSchema, imageNameSchema } from '../../core/images/schemas.ts';
import { CliError } from '../io.ts';
import type { ArtifactName, ImageView, ImagesApi } from './images-api.ts';
import { checkSquashfs, DEFAULT_COMPRESSION, packRootfs, type Compression } from './squashfs.ts';
import { uploadFile, type Measured } from './transfer.ts';

export interface ImportRequest {
  name: string;
  /** x86_64 or aarch64. */
  arch: string;
  /** A root directory to pack, or... */
  rootfs?: string;
  /** ...an existing squashfs file to check and upload as it is. */
  squashfs?: string;
  kernel?: string;
  initrd?: string;
  metadata?: Record<string, string>;
  compression?: Compression;
  /** Aborts packing or uploading (SIGINT); what was created is removed. */
  signal?: AbortSignal;
  /** Progress lines (stderr), so stdout stays the record. */
  progress?: (line: string) => void;
}

async function requireFile(path: string, option: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new CliError(`${option} ${path} does not exist`);
  if (!info.isFile()) throw new CliError(`${option} ${path} is not a regular file`);
}

/**
 * `cfs images import`: packs the root (or checks the given squashfs whole), and only then creates
 * the image record, uploads each artifact by URL (bytes never pass through the API's JSON body)
 * with checksums measured while streaming, and registers the manifest. Any failure after the
 * record exists deletes the record and whatever was uploaded, so nothing is left registered or
 * stored; the temporary squashfs is always removed.
 */
export async function importImage(api: ImagesApi, request: ImportRequest): Promise<ImageView> {
  const name = imageNameSchema.safeParse(request.name);
  if (!name.success) throw new CliError(`--name: ${name.error.issues[0]?.message ?? 'not a valid image name'}`);
  const arch = imageArchSchema.safeParse(request.arch);
  if (!arch.success) throw new CliError(`--arch: ${arch.error.issues[0]?.message ?? 'not a valid architecture'}, not '${request.arch}'`);
  if (Boolean(request.rootfs) === Boolean(request.squashfs)) throw new CliError('give exactly one of --rootfs DIR or --squashfs FILE');
  if (request.rootfs) {
    const info = await stat(request.rootfs).catch(() => undefined);
    if (!info) throw new CliError(`--rootfs ${request.rootfs} does not exist`);
    if (!info.isDirectory()) throw new CliError(`--rootfs ${request.rootfs} is not a directory`);
  }
  if (request.squashfs) await requireFile(request.squashfs, '--squashfs');
  if (request.kernel) await requireFile(request.kernel, '--kernel');
  if (request.initrd) await requireFile(request.initrd, '--initrd');
  const progress = request.progress ?? (() => undefined);

  const work = await mkdtemp(join(tmpdir(), 'cfs-import-'));
  try {
    let rootfs: string;
    if (request.rootfs) {
      rootfs = join(work, 'rootfs.squashfs');
      progress(`packing ${request.rootfs} with mksquashfs`);
      await packRootfs(request.rootfs, rootfs, request.compression ?? DEFAULT_COMPRESSION, request.signal).catch(asCliError);
    } else {
      rootfs = request.squashfs!;
      progress(`checking ${rootfs}`);
      await checkSquashfs(rootfs, request.signal).catch(asCliError);
    }
    const files: [ArtifactName, string][] = [['rootfs', rootfs]];
    if (request.kernel) files.push(['kernel', request.kernel]);
    if (request.initrd) files.push(['initrd', request.initrd]);

    request.signal?.throwIfAborted();
    const image = await api.create({ name: request.name, arch: request.arch, ...(request.metadata ? { metadata: request.metadata } : {}) });
    try {
      const uploaded: (Measured & { name: ArtifactName })[] = [];
      for (const [name, file] of files) {
        progress(`uploading ${name}`);
        uploaded.push({ name, ...(await uploadFile(await api.uploadUrl(image.id, name), file, request.signal).catch(asCliError)) });
      }
      request.signal?.throwIfAborted();
      return await api.registerManifest(image.id, uploaded);
    } catch (error) {
      await api.delete(image.id, true).catch(() => undefined);
      throw error;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Tool and transfer failures reach the user as one `Error: ...` line. */
function asCliError(error: Error): never {
  if (error.name === 'AbortError') throw new CliError('interrupted; nothing was registered', 130);
  if (error.name === 'SquashfsError' || error.name === 'TransferError') throw new CliError(error.message);
  throw error;
}
