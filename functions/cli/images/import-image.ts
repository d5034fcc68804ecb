import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { imageArchSchema, imageNameSchema } from '../../core/images/schemas.ts';
import { CliError } from '../io.ts';
import type { ArtifactName, ImageView, ImagesApi } from './images-api.ts';
import { checkSquashfs, DEFAULT_COMPRESSION, packRootfs, type Compression } from './squashfs.ts';
import { silentProgress, type TransferProgress } from '../progress/transfer-bar.ts';
import { MULTIPART_THRESHOLD_BYTES, uploadMultipart } from './multipart-upload.ts';
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
  /** The byte progress of each upload (a bar on stderr). */
  transfer?: TransferProgress;
  /** Files from this size up go in parts (default 64 MiB). */
  multipartThreshold?: number;
  /** The part size to ask for (default 16 MiB) and how many parts travel at once (default 4). */
  partSize?: number;
  parallel?: number;
  /** Where the resume records of interrupted imports are kept (default `$XDG_CACHE_HOME/cfs/imports` or `~/.cache/cfs/imports`). */
  resumeDir?: string;
}

/**
 * What an interrupted import of existing files leaves so the same command can carry on: the
 * image it created and the multipart uploads under way (the server says which parts it holds).
 */
interface ResumeRecord {
  version: 1;
  image_id: string;
  uploads: Partial<Record<ArtifactName, { upload_id: string; part_size: number }>>;
}

/** The default place of resume records. */
export function defaultResumeDir(env: Record<string, string | undefined> = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cfs', 'imports');
}

/** The record's file: named by what the import is (name, arch, each file's path, size and mtime), so a changed file never resumes. */
async function resumeFileFor(dir: string, request: ImportRequest, files: [ArtifactName, string][]): Promise<string> {
  const identity = [request.name, request.arch];
  for (const [name, file] of files) {
    const info = await stat(file);
    identity.push(name, resolve(file), String(info.size), String(info.mtimeMs));
  }
  return join(dir, `${createHash('sha256').update(identity.join('\n')).digest('hex').slice(0, 32)}.json`);
}

async function readResume(file: string): Promise<ResumeRecord | undefined> {
  const record = await readFile(file, 'utf8').then((text) => JSON.parse(text) as ResumeRecord, () => undefined);
  return record?.version === 1 && typeof record.image_id === 'string' ? record : undefined;
}

async function writeResume(file: string, record: ResumeRecord): Promise<void> {
  await mkdir(resolve(file, '..'), { recursive: true });
  const temporary = `${file}.${randomUUID()}.partial`;
  await writeFile(temporary, JSON.stringify(record));
  await rename(temporary, file);
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
    const threshold = request.multipartThreshold ?? MULTIPART_THRESHOLD_BYTES;
    const sizes = new Map<string, number>();
    for (const [, file] of files) sizes.set(file, (await stat(file)).size);
    // Only files that stay put can resume (a packed root is a new file on each run).
    const resumable = !request.rootfs && files.some(([, file]) => sizes.get(file)! >= threshold);
    const resumeFile = resumable ? await resumeFileFor(request.resumeDir ?? defaultResumeDir(), request, files) : undefined;
    let record = resumeFile ? await readResume(resumeFile) : undefined;
    let image: ImageView | undefined;
    if (record) {
      image = await api.get(record.image_id).catch(() => undefined);
      if (image && !image.link) progress(`resuming the interrupted import into image ${image.id}`);
      else image = undefined;
    }
    image ??= await api.create({ name: request.name, arch: request.arch, ...(request.metadata ? { metadata: request.metadata } : {}) });
    if (!record || record.image_id !== image.id) record = { version: 1, image_id: image.id, uploads: {} };
    const current = record;
    let keep = false;
    try {
      const uploaded: (Measured & { name: ArtifactName })[] = [];
      for (const [name, file] of files) {
        if (sizes.get(file)! < threshold) {
          progress(`uploading ${name}`);
          uploaded.push({ name, ...(await uploadFile(await api.uploadUrl(image.id, name), file, request.signal).catch(asCliError)) });
          continue;
        }
        const previous = current.uploads[name];
        progress(`uploading ${name} in parts${previous ? ' (resuming)' : ''}`);
        const result = await uploadMultipart(api, image.id, name, file, {
          partSize: request.partSize,
          parallel: request.parallel,
          signal: request.signal,
          progress: request.transfer ?? silentProgress,
          resume: previous && { uploadId: previous.upload_id, partSize: previous.part_size },
          started: async ({ uploadId, partSize }) => {
            current.uploads[name] = { upload_id: uploadId, part_size: partSize };
            if (resumeFile) {
              await writeResume(resumeFile, current);
              keep = true;
            }
          },
        }).catch((error: Error) => {
          // A resumable upload keeps its image and parts: the same command sends what is missing.
          if (keep && (error.name === 'AbortError' || error.name === 'TransferError' || request.signal?.aborted)) {
            throw new CliError(`${error.name === 'AbortError' ? 'interrupted' : error.message}; nothing was registered: run the same command again to send only the missing parts`, error.name === 'AbortError' ? 130 : 1);
          }
          keep = false;
          return asCliError(error);
        });
        if (result.skipped > 0) progress(`${name}: ${result.skipped} of ${result.partCount} parts were on the server already, ${result.sent} sent`);
        uploaded.push({ name, size: result.size, md5: result.md5, sha256: result.sha256 });
      }
      request.signal?.throwIfAborted();
      // Every upload is complete: a failure from here on starts over.
      keep = false;
      const registered = await api.registerManifest(image.id, uploaded);
      if (resumeFile) await rm(resumeFile, { force: true });
      return registered;
    } catch (error) {
      if (!keep) {
        await api.delete(image.id, true).catch(() => undefined);
        if (resumeFile) await rm(resumeFile, { force: true });
      }
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
