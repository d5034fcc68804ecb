import { RunnerFailedError, ValidationError } from '../core/errors.ts';
import { AUTOMATION_METADATA_KEY, AUTOMATION_TAG, FINGERPRINT_METADATA_KEY } from '../core/automations/fingerprint.ts';
import { linkForKey, manifestKey, DEFAULT_IMAGE_BUCKET } from '../core/images/manifest.ts';
import { prepareResultImage } from '../core/images/result-images.ts';
import { verifyStoredArtifact } from '../core/images/verify-artifact.ts';
import { BOOT_PARAMETERS_TYPE, INITRD_TYPE, KERNEL_TYPE, ROOTFS_TYPE, type ImageManifest, type ManifestArtifact } from '../core/model/image.ts';
import type { PinnedArtifact, SessionRecord, StagedImage } from '../core/model/session.ts';
import { endStep, startStep } from '../core/workflow/step-progress.ts';
import { redactCloneUrl } from '../core/workflow/redact.ts';
import { readRunnerOutcome, type UploadedArtifact } from './runner-outcome.ts';
import type { StepPorts } from './step-ports.ts';
import { loadActiveSession } from './validate-image.ts';

function manifestEntry(type: string, artifact: UploadedArtifact | PinnedArtifact): ManifestArtifact {
  return { link: linkForKey(artifact.key, artifact.md5), type, md5: artifact.md5, sha256: artifact.sha256, size: artifact.size };
}

/**
 * Lineage of a result image, kept in its IMS metadata (a string map), with its input fingerprint
 * (automations skip a rebuild when an image carries it) and, for a session an automation
 * started, that automation's name (its loop guard: its own results never trigger it).
 */
export function lineageMetadata(session: SessionRecord, staged: StagedImage): Record<string, string> {
  const automation = session.tags[AUTOMATION_TAG];
  return {
    cfs_source_image_id: staged.image_id,
    cfs_session: session.name,
    cfs_configuration: session.configuration.name,
    cfs_layers: JSON.stringify(
      session.status.layers.map((l) => ({ name: l.name, clone_url: redactCloneUrl(l.clone_url), commit: l.commit, playbook: l.playbook })),
    ),
    ...(staged.fingerprint ? { [FINGERPRINT_METADATA_KEY]: staged.fingerprint } : {}),
    ...(automation ? { [AUTOMATION_METADATA_KEY]: automation } : {}),
  };
}

/**
 * Checks that the stored bytes of an upload are the ones the runner recorded (size, md5 and
 * sha256). The store's own write-time measurement answers when it has one, so a 76 MB result is
 * not read and hashed a second time; otherwise (S3, or a file changed since it was written) the
 * bytes are read back and hashed.
 */
async function verifyUpload(store: StepPorts['artifacts'], artifact: UploadedArtifact): Promise<void> {
  const measured = await store.measured?.(artifact.key);
  if (measured && measured.size === artifact.size && measured.md5 === artifact.md5 && measured.sha256 === artifact.sha256) return;
  await verifyStoredArtifact(store, artifact.key, artifact);
}

/**
 * package-and-upload (one image): verifies the runner's uploads against the sizes and checksums
 * it recorded, writes the IMS manifest under its final key (kernel and initrd from the customized
 * root, else the source's; the source's boot parameters) and prepares the result image with its
 * lineage, hidden: nothing is listed or announced until RecordArtifacts completes the session with
 * every image verified (all or nothing). Running it twice finds the image prepared and returns it.
 */
export async function packageAndUpload(
  ports: StepPorts,
  input: { session: string; image_id: string },
): Promise<{ image_id: string; result_id: string }> {
  const session = await loadActiveSession(ports, input.session);
  const staged = session.status.plan?.find((p) => p.image_id === input.image_id);
  if (!staged) throw new ValidationError(`image ${input.image_id} was never staged for session '${session.name}'`);
  if (await ports.images.get(staged.result_id, { includePending: true })) return { image_id: staged.image_id, result_id: staged.result_id };

  const outcome = await readRunnerOutcome(ports, session.name);
  const result = outcome?.images.find((i) => i.image_id === staged.image_id);
  if (!outcome || outcome.status !== 'succeeded' || !result?.uploaded) {
    throw new RunnerFailedError(`the runner recorded no uploaded result for image ${staged.image_id}`);
  }
  const { rootfs, kernel, initrd } = result.uploaded;
  const started = ports.clock.now().toISOString();
  // The package step runs from here, so a failed check is recorded against it and this image.
  await ports.sessions.update(session.name, (s) =>
    startStep(endStep(s, { name: 'ansible' }, 'succeeded', outcome.finished, { end_time: outcome.finished }), { name: 'package', image_id: staged.image_id }, started),
  );
  // Nothing is registered on the runner's word alone: what is stored is checked against it.
  for (const artifact of [rootfs, kernel, initrd]) {
    if (artifact?.key.startsWith(staged.upload_prefix)) await verifyUpload(ports.artifacts, artifact);
  }

  const artifacts = [manifestEntry(ROOTFS_TYPE, rootfs)];
  const kernelArtifact = kernel ?? staged.kernel;
  const initrdArtifact = initrd ?? staged.initrd;
  if (kernelArtifact) artifacts.push(manifestEntry(KERNEL_TYPE, kernelArtifact));
  if (initrdArtifact) artifacts.push(manifestEntry(INITRD_TYPE, initrdArtifact));
  if (staged.boot_parameters) artifacts.push(manifestEntry(BOOT_PARAMETERS_TYPE, staged.boot_parameters));
  const manifest: ImageManifest = { version: '1.0', created: started, artifacts };
  const key = manifestKey(DEFAULT_IMAGE_BUCKET, staged.result_id);
  const stored = await ports.artifacts.put(key, JSON.stringify(manifest, null, 2), { contentType: 'application/json' });

  // Hidden until the session completes: RecordArtifacts shows every result and announces it at once.
  await prepareResultImage(
    ports,
    { name: staged.result_name, arch: staged.arch, link: linkForKey(key, stored.etag), metadata: lineageMetadata(session, staged) },
    { id: staged.result_id, session: session.name },
  );
  await ports.sessions.update(session.name, (s) => endStep(s, { name: 'package', image_id: staged.image_id }, 'succeeded', ports.clock.now().toISOString(), { start_time: started }));
  return { image_id: staged.image_id, result_id: staged.result_id };
}
