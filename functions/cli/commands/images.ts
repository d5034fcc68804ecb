import { Command, Option } from 'commander';
import { z } from 'zod';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiClient } from '../api-client.ts';
import { ImagesApi, type ArtifactName, type ImageView } from '../images/images-api.ts';
import { importImage } from '../images/import-image.ts';
import { COMPRESSORS, DEFAULT_COMPRESSION, type Compressor } from '../images/squashfs.ts';
import { downloadFile } from '../images/transfer.ts';
import { transferBar } from '../progress/transfer-bar.ts';
import { CliError, processIo, type CliIo } from '../io.ts';
import { matchingFlag, parseOptions } from '../option-schemas.ts';
import { OUTPUT_FORMATS, printResult, table, type OutputFormat } from '../output.ts';

function withFormat(command: Command): Command {
  return command.addOption(new Option('--format <format>', 'output format: human, json (the API JSON, for jq) or yaml').choices(OUTPUT_FORMATS).default('human'));
}

function imageSummary(value: unknown): string {
  const image = value as ImageView;
  const metadata = Object.entries(image.metadata ?? {}).map(([k, v]) => `${k}=${v}`);
  return [
    `Image ${image.id}: ${image.name}`,
    `  arch      ${image.arch}`,
    `  created   ${image.created}`,
    `  manifest  ${image.link?.path ?? '- (no artifacts registered)'}`,
    ...(metadata.length ? [`  metadata  ${metadata.join(', ')}`] : []),
  ].join('\n');
}

function imageListSummary(value: unknown): string {
  const images = value as ImageView[];
  if (images.length === 0) return 'no images';
  return table(
    ['ID', 'NAME', 'ARCH', 'CREATED', 'MANIFEST'],
    images.map((i) => [i.id, i.name, i.arch, i.created, i.link ? 'yes' : 'no']),
  );
}

/** An AbortSignal that fires on SIGINT or SIGTERM while `work` runs, so it can clean up before exiting. */
async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } catch (error) {
    if ((error as Error).name === 'AbortError' || controller.signal.aborted) throw new CliError('interrupted; nothing was registered', 130);
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The architecture of the machine the sample root's binaries come from. */
function hostArch(): string {
  return process.arch === 'arm64' ? 'aarch64' : 'x86_64';
}

/** `images list`'s flags: the listing's filters (README, "Image lists"), the page size and a page cap. */
interface ImageListOptions {
  format: OutputFormat;
  name?: string;
  namePrefix?: string;
  nameContains?: string;
  nameGlob?: string;
  arch?: string;
  metadataKey?: string;
  limit?: string;
  pages?: string;
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag} must be a whole number of at least 1, not '${value}'`);
  return n;
}

/** `images import`'s flags (commander checks `--compressor`'s and `--format`'s choices). */
const importOptions = z.object({
  name: z.string(),
  rootfs: z.string().optional(),
  squashfs: z.string().optional(),
  kernel: z.string().optional(),
  initrd: z.string().optional(),
  arch: z.string(),
  compressor: z.enum(COMPRESSORS),
  compressionLevel: matchingFlag(/^\d+$/, '--compression-level takes a number').transform(Number).optional(),
  format: z.enum(OUTPUT_FORMATS),
});

/** The compression to pack with: the default level only for the default compressor, else the compressor's own unless given. */
function compressionOf(options: { compressor: Compressor; compressionLevel?: number | undefined }) {
  if (options.compressionLevel === undefined) return options.compressor === DEFAULT_COMPRESSION.compressor ? DEFAULT_COMPRESSION : { compressor: options.compressor };
  return { compressor: options.compressor, level: options.compressionLevel };
}

/**
 * `cfs images import|list|describe|download|delete|build-sample`: the IMS v3 image registry.
 * Image bytes move by URL (upload and download URLs from the API), never in an API body.
 */
export function imagesCommand(io: CliIo = processIo): Command {
  const images = new Command('images').description('images: IMS v3 image records and their artifacts (rootfs, kernel, initrd)');
  const api = () => new ImagesApi(new ApiClient(io));

  withFormat(
    images
      .command('import')
      .description('pack a root directory (or take a squashfs), upload it with checksums, and register the image')
      .requiredOption('--name <name>', 'image name')
      .option('--rootfs <dir>', 'a root directory to pack with mksquashfs (run as root to keep every owner)')
      .option('--squashfs <file>', 'an existing squashfs, checked whole before upload')
      .option('--kernel <file>', 'the kernel to register with the image')
      .option('--initrd <file>', 'the initrd to register with the image')
      .addOption(new Option('--arch <arch>', 'x86_64 or aarch64').default('x86_64'))
      .addOption(new Option('--compressor <compressor>', 'mksquashfs compressor (--rootfs)').choices(COMPRESSORS).default(DEFAULT_COMPRESSION.compressor))
      .option('--compression-level <level>', `compression level (--rootfs; default gzip level ${DEFAULT_COMPRESSION.level})`),
  ).action(async (flags: unknown) => {
    const options = parseOptions(importOptions, flags);
    const image = await interruptible((signal) =>
      importImage(api(), {
        name: options.name,
        arch: options.arch,
        rootfs: options.rootfs && resolve(options.rootfs),
        squashfs: options.squashfs && resolve(options.squashfs),
        kernel: options.kernel,
        initrd: options.initrd,
        compression: compressionOf(options),
        signal,
        progress: (line) => io.err(line),
        transfer: transferBar(io),
      }),
    );
    await printResult(io, options.format, image, imageSummary);
  });

  withFormat(
    images
      .command('list')
      .description('list image records, following every page the server sends (--format json prints the JSON array, for jq)')
      .option('--name <name>', 'only images with exactly this name')
      .option('--name-prefix <prefix>', 'only images whose name starts with this')
      .option('--name-contains <text>', 'only images whose name contains this')
      .option('--name-glob <glob>', "only images whose whole name matches this shell glob (quote it: 'compute-*')")
      .option('--arch <arch>', 'only images of this architecture (x86_64, aarch64)')
      .option('--metadata-key <key>', 'only images whose metadata has this key')
      .option('--limit <n>', 'images per request (1-1000; the server picks when absent)')
      .option('--pages <n>', 'stop after this many pages (default: all)'),
  ).action(async (options: ImageListOptions) => {
    const filters = {
      name: options.name,
      name_prefix: options.namePrefix,
      name_contains: options.nameContains,
      name_glob: options.nameGlob,
      arch: options.arch,
      metadata_key: options.metadataKey,
      limit: options.limit,
    };
    await printResult(io, options.format, await api().list(filters, { pages: options.pages === undefined ? undefined : positive(options.pages, '--pages') }), imageListSummary);
  });

  withFormat(images.command('describe').description('show an image record').argument('<id>', 'image id')).action(async (id: string, options: { format: OutputFormat }) => {
    await printResult(io, options.format, await api().get(id), imageSummary);
  });

  images
    .command('download')
    .description("download an artifact and verify it against the manifest's checksums")
    .argument('<id>', 'image id')
    .addOption(new Option('--artifact <artifact>', 'which artifact').choices(['rootfs', 'kernel', 'initrd']).default('rootfs'))
    .requiredOption('-o, --output <file>', 'where to write it')
    .action(async (id: string, options: { artifact: ArtifactName; output: string }) => {
      await interruptible(async (signal) => {
        const source = await api().downloadUrl(id, options.artifact);
        await downloadFile(source.url, options.output, source, signal, { progress: transferBar(io), label: options.artifact }).catch((error: Error) => {
          if (error.name === 'TransferError') throw new CliError(error.message);
          throw error;
        });
        io.err(`${options.artifact} of ${id}: ${source.size} bytes, sha256 ${source.sha256} verified -> ${options.output}`);
      });
    });

  images
    .command('delete')
    .description('delete an image record and the artifacts no other image uses')
    .argument('<id>', 'image id')
    .option('--force', 'delete even while pending or running sessions target it')
    .action(async (id: string, options: { force?: boolean }) => {
      await api().delete(id, options.force ?? false);
    });

  withFormat(
    images
      .command('build-sample')
      .description(
        "build and register a small SAMPLE image (python3, sh, coreutils: enough for Ansible's chroot connection; not bootable) for demos and tests; real users import their own images",
      )
      .requiredOption('--name <name>', 'image name'),
  ).action(async (options: { name: string; format: OutputFormat }) => {
    // Loaded only by this command: it copies files from the host.
    const { buildSampleRoot } = await import('../images/sample-root.ts');
    const work = await mkdtemp(join(tmpdir(), 'cfs-sample-'));
    try {
      const root = join(work, 'root');
      await buildSampleRoot(root);
      const image = await interruptible((signal) =>
        importImage(api(), {
          name: options.name,
          arch: hostArch(),
          rootfs: root,
          kernel: join(root, 'boot', 'vmlinuz-sample'),
          initrd: join(root, 'boot', 'initrd.img-sample'),
          metadata: { sample: 'true' },
          signal,
          progress: (line) => io.err(line),
        }),
      );
      await printResult(io, options.format, image, imageSummary);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  return images;
}
