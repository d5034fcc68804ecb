import type { ApiClient } from '../api-client.ts';
import type { Measured } from './transfer.ts';

/** The IMS v3 image path the CLI speaks (as `cray ims images`). */
export const IMAGES_PATH = '/apis/ims/v3/images';

/** An IMS image record as the API returns it. */
export interface ImageView {
  id: string;
  name: string;
  created: string;
  arch: string;
  link?: { path: string; etag?: string; type: string };
  metadata?: Record<string, string>;
}

export type ArtifactName = 'rootfs' | 'kernel' | 'initrd' | 'boot_parameters';

export interface DownloadUrl extends Measured {
  url: string;
  key: string;
  type: string;
}

/** A multipart upload as the API started it. */
export interface MultipartUpload {
  upload_id: string;
  part_size: number;
  part_count: number;
  size: number;
}

/** One part the server holds. */
export interface ReceivedPart {
  number: number;
  size: number;
  sha256?: string;
}

/** A URL to PUT one part to, with the headers it must carry. */
export interface PartUrl {
  number: number;
  url: string;
  headers: Record<string, string>;
}

/** The query of a `Link: <?...>; rel="next"` header (the API writes a relative reference: the same path, these parameters). */
export function nextPageQuery(link: string | null): Record<string, string> | undefined {
  const target = link ? /<([^>]*)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined;
  if (target === undefined) return undefined;
  return Object.fromEntries(new URL(target, 'http://link.invalid/').searchParams);
}

/** Typed calls to the image API, including the artifact URL flow (see functions/api/routes/ims-images.ts). */
export class ImagesApi {
  constructor(private readonly api: ApiClient) {}

  async create(body: { name: string; arch: string; metadata?: Record<string, string> }): Promise<ImageView> {
    return (await this.api.request<ImageView>('POST', IMAGES_PATH, { body })).body!;
  }

  /**
   * Image records matching `filters` (the listing's query parameters: `name_prefix`, `arch`, ...),
   * following each page's `Link: <...>; rel="next"` until the last; `limit` sets the page size,
   * `pages` stops after that many pages (the rest is then not fetched).
   */
  async list(filters: Record<string, string | undefined> = {}, options: { pages?: number } = {}): Promise<ImageView[]> {
    const images: ImageView[] = [];
    let query: Record<string, string | undefined> = filters;
    for (let page = 1; ; page++) {
      const response = await this.api.request<ImageView[]>('GET', IMAGES_PATH, { query });
      images.push(...(response.body ?? []));
      const next = nextPageQuery(response.headers?.get('link') ?? null);
      if (!next || page === options.pages) return images;
      query = next;
    }
  }

  async get(id: string): Promise<ImageView> {
    return (await this.api.request<ImageView>('GET', `${IMAGES_PATH}/${encodeURIComponent(id)}`)).body!;
  }

  async delete(id: string, force = false): Promise<void> {
    await this.api.request('DELETE', `${IMAGES_PATH}/${encodeURIComponent(id)}`, { query: { force: force ? 'true' : undefined } });
  }

  async uploadUrl(id: string, artifact: ArtifactName): Promise<string> {
    return (await this.api.request<{ url: string }>('POST', `${IMAGES_PATH}/${encodeURIComponent(id)}/artifacts/${artifact}/upload-url`)).body!.url;
  }

  async downloadUrl(id: string, artifact: ArtifactName): Promise<DownloadUrl> {
    return (await this.api.request<DownloadUrl>('POST', `${IMAGES_PATH}/${encodeURIComponent(id)}/artifacts/${artifact}/download-url`)).body!;
  }

  async registerManifest(id: string, artifacts: (Measured & { name: ArtifactName })[]): Promise<ImageView> {
    return (await this.api.request<ImageView>('PUT', `${IMAGES_PATH}/${encodeURIComponent(id)}/manifest`, { body: { artifacts } })).body!;
  }

  private multipartPath(id: string, artifact: ArtifactName, uploadId?: string): string {
    const base = `${IMAGES_PATH}/${encodeURIComponent(id)}/artifacts/${artifact}/multipart`;
    return uploadId === undefined ? base : `${base}/${encodeURIComponent(uploadId)}`;
  }

  async startMultipart(id: string, artifact: ArtifactName, body: { size: number; part_size?: number }): Promise<MultipartUpload> {
    return (await this.api.request<MultipartUpload>('POST', this.multipartPath(id, artifact), { body })).body!;
  }

  /** The parts the server holds; undefined when it knows no such upload (completed, aborted, or swept). */
  async receivedParts(id: string, artifact: ArtifactName, uploadId: string): Promise<ReceivedPart[] | undefined> {
    try {
      return (await this.api.request<{ parts: ReceivedPart[] }>('GET', this.multipartPath(id, artifact, uploadId))).body!.parts;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
  }

  async partUrls(id: string, artifact: ArtifactName, uploadId: string, parts: { number: number; sha256: string }[]): Promise<PartUrl[]> {
    return (await this.api.request<{ parts: PartUrl[] }>('POST', `${this.multipartPath(id, artifact, uploadId)}/parts`, { body: { parts } })).body!.parts;
  }

  async completeMultipart(id: string, artifact: ArtifactName, uploadId: string, parts: { number: number; sha256: string }[]): Promise<void> {
    await this.api.request('POST', `${this.multipartPath(id, artifact, uploadId)}/complete`, { body: { parts } });
  }

  async abortMultipart(id: string, artifact: ArtifactName, uploadId: string): Promise<void> {
    await this.api.request('DELETE', this.multipartPath(id, artifact, uploadId));
  }
}
