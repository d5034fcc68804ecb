import { randomUUID } from 'node:crypto';
import { NotFoundError, ValidationError } from '../core/errors.ts';
import { DEFAULT_IMAGE_BUCKET, findArtifact, keyForLink } from '../core/images/manifest.ts';
import type { ManifestArtifact } from '../core/model/image.ts';
import type { PinnedArtifact, StagedImage } from '../core/model/session.ts';
import { sessionImageFingerprint } from '../core/automations/fingerprint.ts';
import { advanceSession } from '../core/sessions/status.ts';
import { endStep, startStep } from '../core/workflow/step-progress.ts';
import { RUNNER_VERSION } from '../runner/runner-version.ts';
import { readReadyManifest } from './image-manifest.ts';
import type { StepPorts } from './step-ports.ts';
import { loadActiveSession } from './validate-images.ts';

function pin(artifact: ManifestArtifact | undefined, what: string, imageId: string): PinnedArtifact | undefined {
  if (!artifact) return undefined;
  if (!artifact.sha256 || typeof artifact.size !== 'number') {
    throw new ValidationError(`image ${imageId}: the manifest's ${what} has no sha256 and size to verify it against`);
  }
  return { key: keyForLink(artifact.link), size: artifact.size, sha256: artifact.sha256, md5: artifact.md5 };
}

/**
 * stage-image (one source image): pins its rootfs (location, size, sha256), kernel, initrd and
 * boot parameters, its result name (image map, else `<source name>_cfs_<session>`), its input
 * fingerprint and a result ID allocated now but registered only after verification; records it in the plan and
 * moves the session to running. Running it twice returns the plan entry already recorded.
 */
export async function stageImage(ports: StepPorts, input: { session: string; image_id: string }): Promise<StagedImage> {
  const session = await loadActiveSession(ports, input.session);
  const existing = session.status.plan?.find((p) => p.image_id === input.image_id);
  if (existing) return existing;

  const ready = await readReadyManifest(ports, input.image_id);
  if (!ready) throw new NotFoundError('image with a rootfs', input.image_id);
  const { image, manifest, rootfs } = ready;
  const resultId = randomUUID();
  const mapped = session.target.image_map.find((m) => m.source_id === input.image_id);
  const entry: StagedImage = {
    image_id: input.image_id,
    source_name: image.name,
    arch: image.arch,
    rootfs: pin(rootfs, 'rootfs', input.image_id)!,
    result_name: mapped?.result_name ?? `${image.name}_cfs_${session.name}`,
    result_id: resultId,
    upload_prefix: `${DEFAULT_IMAGE_BUCKET}/${resultId}/`,
  };
  // The input fingerprint is known from here on: the rootfs is pinned, the layers were pinned at creation.
  entry.fingerprint = sessionImageFingerprint(session, input.image_id, entry.rootfs.sha256, RUNNER_VERSION);
  const kernel = pin(findArtifact(manifest, 'kernel'), 'kernel', input.image_id);
  const initrd = pin(findArtifact(manifest, 'initrd'), 'initrd', input.image_id);
  const bootParameters = pin(findArtifact(manifest, 'boot_parameters'), 'boot parameters', input.image_id);
  if (kernel) entry.kernel = kernel;
  if (initrd) entry.initrd = initrd;
  if (bootParameters) entry.boot_parameters = bootParameters;

  const stamp = ports.clock.now().toISOString();
  let pinned = entry;
  await ports.sessions.update(session.name, (s) => {
    const already = s.status.plan?.find((p) => p.image_id === input.image_id);
    pinned = already ?? entry;
    const plan = already ? s.status.plan! : [...(s.status.plan ?? []), entry];
    const progressed = endStep(startStep(s, { name: 'stage', image_id: input.image_id }, stamp), { name: 'stage', image_id: input.image_id }, 'succeeded', stamp);
    return advanceSession({ ...progressed, status: { ...progressed.status, plan } }, { status: 'running' });
  });
  return pinned;
}
