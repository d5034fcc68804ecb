import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { silentProgress, type TransferProgress } from '../progress/transfer-bar.ts';
import type { ArtifactName, ImagesApi } from './images-api.ts';
import { reasonOf, requestFor, TransferError, type Measured } from './transfer.ts';

/** Files from this size up go in parts (below it one PUT is cheaper). */
export const MULTIPART_THRESHOLD_BYTES = 64 * 1024 * 1024;
/** The part size the CLI asks for (the server raises it for files that would need over 10,000 parts). */
export const DEFAULT_PART_BYTES = 16 * 1024 * 1024;
/** Parts in flight at once (memory is about this many parts, plus the one being read). */
export const DEFAULT_PARALLEL_PARTS = 4;
const ATTEMPTS = 3;

export interface MultipartOptions {
  /** The part size to ask for (a resumed upload keeps the one it started with). */
  partSize?: number;
  parallel?: number;
  signal?: AbortSignal;
  progress?: TransferProgress;
  /** An upload an earlier, interrupted run started: the parts the server holds are not sent again. */
  resume?: { uploadId: string; partSize: number };
  /** Called once the upload exists on the server (before any part is sent), to remember it for a resume. */
  started?: (upload: { uploadId: string; partSize: number }) => Promise<void>;
}

/** What an upload measured over the whole file, and how many parts it sent and found on the server. */
export interface MultipartResult extends Measured {
  uploadId: string;
  partCount: number;
  sent: number;
  skipped: number;
}

/** PUTs one part's bytes with the headers its URL was signed with; a refusal names the part and the store's reason. */
async function putPart(url: string, headers: Record<string, string>, bytes: Buffer, number: number, signal?: AbortSignal): Promise<void> {
  const target = new URL(url);
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = requestFor(target)(target, {
      method: 'PUT',
      signal,
      headers: { ...headers, 'Content-Length': String(bytes.length), 'Content-Type': 'application/octet-stream' },
    });
    req.on('response', resolve);
    req.on('error', reject);
    req.end(bytes);
  });
  if ((response.statusCode ?? 0) >= 300) {
    const reason = await reasonOf(response);
    throw Object.assign(new TransferError(`part ${number} refused: ${reason}`), { status: response.statusCode });
  }
  response.resume();
}

/**
 * Uploads a file in parts to an artifact's multipart upload: the file is read once, in order,
 * hashing the whole (md5, sha256 for the manifest) and each part (sha256, which its URL is bound
 * to, so the store refuses a part that changed on the way); `parallel` parts travel at once.
 * Resuming, the parts the server already holds with the same sha256 are not sent again. The
 * upload is then completed (the server checks every part is there with its checksum).
 */
export async function uploadMultipart(api: ImagesApi, imageId: string, artifact: ArtifactName, file: string, options: MultipartOptions = {}): Promise<MultipartResult> {
  const { size } = await stat(file);
  const progress = options.progress ?? silentProgress;
  const parallel = Math.max(1, options.parallel ?? DEFAULT_PARALLEL_PARTS);
  let uploadId: string | undefined;
  let partSize = 0;
  let received = new Map<number, string | undefined>();
  if (options.resume) {
    const parts = await api.receivedParts(imageId, artifact, options.resume.uploadId);
    if (parts) {
      uploadId = options.resume.uploadId;
      partSize = options.resume.partSize;
      received = new Map(parts.map((part) => [part.number, part.sha256]));
    }
  }
  if (uploadId === undefined) {
    const upload = await api.startMultipart(imageId, artifact, { size, part_size: options.partSize ?? DEFAULT_PART_BYTES });
    uploadId = upload.upload_id;
    partSize = upload.part_size;
    await options.started?.({ uploadId, partSize });
  }
  const partCount = Math.max(1, Math.ceil(size / partSize));
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  const checksums: { number: number; sha256: string }[] = [];
  let sent = 0;
  let skipped = 0;
  let failure: unknown;
  const inFlight = new Set<Promise<void>>();

  const send = async (number: number, bytes: Buffer, checksum: string) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const [url] = await api.partUrls(imageId, artifact, uploadId, [{ number, sha256: checksum }]);
        await putPart(url!.url, url!.headers, bytes, number, options.signal);
        sent++;
        progress.advance(bytes.length);
        return;
      } catch (error) {
        const status = (error as { status?: number }).status ?? 0;
        // A refusal (4xx) will not change on a retry; a dropped connection or a 5xx may.
        if (options.signal?.aborted || (status >= 400 && status < 500) || attempt >= ATTEMPTS) throw error;
      }
    }
  };

  progress.start(artifact, size);
  const handle = await open(file, 'r');
  try {
    for (let number = 1; number <= partCount && failure === undefined; number++) {
      options.signal?.throwIfAborted();
      const length = Math.min(partSize, size - (number - 1) * partSize);
      const bytes = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(bytes, filled, length - filled, (number - 1) * partSize + filled);
        if (bytesRead === 0) throw new TransferError(`${file} shrank while it was read; nothing was registered`);
        filled += bytesRead;
      }
      md5.update(bytes);
      sha256.update(bytes);
      const checksum = createHash('sha256').update(bytes).digest('hex');
      checksums.push({ number, sha256: checksum });
      if (received.get(number) === checksum) {
        skipped++;
        progress.advance(length);
        continue;
      }
      const task: Promise<void> = send(number, bytes, checksum).then(
        () => void inFlight.delete(task),
        (error: unknown) => {
          inFlight.delete(task);
          failure ??= error;
        },
      );
      inFlight.add(task);
      if (inFlight.size >= parallel) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    await handle.close();
    progress.finish();
  }
  if (failure !== undefined) throw failure;
  await api.completeMultipart(imageId, artifact, uploadId, checksums);
  return { size, md5: md5.digest('hex'), sha256: sha256.digest('hex'), uploadId, partCount, sent, skipped };
}
