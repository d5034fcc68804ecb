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

/** Typed calls to the image API, including the artifact URL flow (see functions/api/routes/ims-images.ts). */
export class ImagesApi {
  constructor(private readonly api: ApiClient) {}

  async create(body: { name: string; arch: string; metadata?: Record<string, string> }): Promise<ImageView> {
    return (await this.api.request<ImageView>('POST', IMAGES_PATH, { body })).body!;
  }

  async list(): Promise<ImageView[]> {
    return (await this.api.request<ImageView[]>('GET', IMAGES_PATH)).body ?? [];
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
}
