import { ROOTFS_TYPE, type ImageRecord } from '../../functions/core/model/image.ts';
import type { SessionRecord } from '../../functions/core/model/session.ts';
import type { StepPorts } from '../../functions/steps/step-ports.ts';

/** A pending image session over the given groups, as createSession would store it. */
export function pendingSession(name: string, groups: Record<string, string[]>, extra: Partial<SessionRecord> = {}): SessionRecord {
  return {
    name,
    configuration: { name: 'config', limit: '' },
    ansible: { config: '', limit: '', verbosity: 0, passthrough: '' },
    target: { definition: 'image', groups: Object.entries(groups).map(([g, members]) => ({ name: g, members })), image_map: [] },
    tags: {},
    debug_on_failure: false,
    status: {
      session: { status: 'pending', succeeded: 'none', start_time: '2026-11-26T10:00:00Z', job: 'job-1' },
      artifacts: [],
      layers: [
        { name: 'base', clone_url: 'https://user:secret@git.example/base.git', commit: 'a'.repeat(40), playbook: 'site.yml' },
      ],
    },
    ...extra,
  };
}

/** Registers an image whose manifest lists a rootfs (and a kernel) in the store, as `cfs images import` would. */
export async function registerImage(ports: StepPorts, id: string, name: string, rootfsBytes = `rootfs of ${name}`): Promise<ImageRecord> {
  const rootfs = await ports.artifacts.put(`boot-images/${id}/rootfs`, rootfsBytes);
  const kernel = await ports.artifacts.put(`boot-images/${id}/kernel`, `kernel of ${name}`);
  const manifest = {
    version: '1.0',
    created: '2026-11-26T09:00:00Z',
    artifacts: [
      { link: { path: `s3://${rootfs.key}`, etag: rootfs.etag, type: 's3' }, type: ROOTFS_TYPE, md5: rootfs.md5, sha256: rootfs.sha256, size: rootfs.size },
      { link: { path: `s3://${kernel.key}`, etag: kernel.etag, type: 's3' }, type: 'application/vnd.cray.image.kernel', md5: kernel.md5, sha256: kernel.sha256, size: kernel.size },
    ],
  };
  const stored = await ports.artifacts.put(`boot-images/${id}/manifest.json`, JSON.stringify(manifest));
  const image: ImageRecord = { id, name, created: '2026-11-26T09:00:00Z', arch: 'x86_64', link: { path: `s3://boot-images/${id}/manifest.json`, etag: stored.etag, type: 's3' }, metadata: {} };
  await ports.images.create(image);
  return image;
}
