import { IntegrityError, RunnerFailedError, ValidationError } from '../core/errors.ts';
import { AUTOMATION_METADATA_KEY, AUTOMATION_TAG, FINGERPRINT_METADATA_KEY } from '../core/automations/fingerprint.ts';
import { linkForKey, manifestKey, DEFAULT_IMAGE_BUCKET } from '../core/images/manifest.ts';
import { prepareResultImage } from '../core/images/result-images.ts';
import { verifyStoredArtifact } from '../core/images/verify-artifact.ts';
import { BOOT_PARAMETERS_TYPE, INITRD_TYPE, KERNEL_TYPE, ROOTFS_TYPE, type ImageManifest, type ManifestArtifact } from '../core/model/image.ts';
import type { PinnedArtifact, SessionRecord, StagedImage } from '../core/model/session.ts';
import { endStep, startStep } from '../core/workflow/step-progress.ts';
import { applyTestOutcome } from '../core/workflow/test-steps.ts';
import { redactCloneUrl } from '../core/workflow/redact.ts';
import { readRunDocument } from '../core/workflow/run-document-store.ts';
import { recordRunnerLayers } from './layer-cache-records.ts';
import { readRunnerOutcome, type UploadedArtifact } from './runner-outcome.ts';
import type { StepPorts } from './step-ports.ts';
import { loadActiveSession } from './validate-images.ts';

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
 * Moves one upload from the runner's prefix to the result's key (which the runner cannot write)
 * and checks the bytes now there against what the runner recorded (size, md5 and sha256): the
 * store's own account of the move answers when it measured all three, so a 76 MB result is not
 * read and hashed a second time; otherwise (or on a second run, the upload already moved) the
 * bytes at the final key are read back and hashed. Returns the artifact as it is linked.
 */
async function promoteUpload(store: StepPorts['artifacts'], artifact: UploadedArtifact, runnerPrefix: string, finalPrefix: string): Promise<UploadedArtifact> {
  const name = artifact.key.startsWith(runnerPrefix) ? artifact.key.slice(runnerPrefix.length) : '';
  // The outcome is the runner's word: it may only name its own uploads, never another key.
  if (!['rootfs', 'kernel', 'initrd'].includes(name)) {
    throw new IntegrityError(`the runner recorded an upload at ${artifact.key}, outside its result prefix ${runnerPrefix}`);
  }
  const promoted = { ...artifact, key: `${finalPrefix}${name}` };
  const moved = await store.promote(artifact.key, promoted.key);
  if (moved && moved.size === artifact.size && moved.md5 === artifact.md5 && moved.sha256 === artifact.sha256) return promoted;
  const measured = moved ? undefined : await store.measured?.(promoted.key);
  if (measured && measured.size === artifact.size && measured.md5 === artifact.md5 && measured.sha256 === artifact.sha256) return promoted;
  await verifyStoredArtifact(store, promoted.key, promoted);
  return promoted;
}

/**
 * package-and-upload (one image): promotes the runner's uploads from its prefix to the result's
 * keys and verifies them there against the sizes and checksums it recorded, writes the IMS manifest under its final key (kernel and initrd from the customized
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
  const document = await readRunDocument(ports.artifacts, session.name);
  const runnerPrefix = document?.images.find((i) => i.image_id === staged.image_id)?.upload_prefix;
  if (!runnerPrefix) throw new RunnerFailedError(`the run document of session '${session.name}' names no upload prefix for image ${staged.image_id}`);
  const started = ports.clock.now().toISOString();
  // The package step runs from here, so a failed check is recorded against it and this image.
  // The image's test entries (its checks and boot test, all passed) come from the outcome's record.
  await ports.sessions.update(session.name, (s) =>
    startStep(applyTestOutcome(endStep(s, { name: 'ansible' }, 'succeeded', outcome.finished, { end_time: outcome.finished }), [result]), { name: 'package', image_id: staged.image_id }, started),
  );
  // Nothing is registered on the runner's word alone: what is stored is moved out of its reach, then checked against it.
  const promote = (artifact: UploadedArtifact) => promoteUpload(ports.artifacts, artifact, runnerPrefix, staged.upload_prefix);
  const rootfs = await promote(result.uploaded.rootfs);
  const kernel = result.uploaded.kernel && (await promote(result.uploaded.kernel));
  const initrd = result.uploaded.initrd && (await promote(result.uploaded.initrd));
  await recordRunnerLayers(ports, document, outcome, [staged.image_id]);

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
