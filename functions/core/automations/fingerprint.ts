import { createHash } from 'node:crypto';
import type { PinnedLayer, SessionRecord } from '../model/session.ts';
import { redactCloneUrl } from '../workflow/redact.ts';

/** Image metadata keys this product writes beside the lineage (`cfs_session`, `cfs_layers`, ...). */
export const FINGERPRINT_METADATA_KEY = 'cfs_fingerprint';
/** Set on a result image when its session was started by an automation (the loop guard reads it). */
export const AUTOMATION_METADATA_KEY = 'cfs_automation';
/** The session tag an automation puts on every session it starts. */
export const AUTOMATION_TAG = 'automation';

/** Bumped when the canonical form below changes, so old and new fingerprints never collide. */
const FINGERPRINT_SCHEME = 'cfs-fingerprint/1';

/**
 * Everything that goes into a customized image, and nothing that does not: the same inputs
 * give the same image, so a result that carries the same fingerprint need not be rebuilt.
 */
export interface FingerprintInputs {
  /** sha256 of the source image's rootfs (from its IMS manifest). */
  rootfs_sha256: string;
  /** The layers applied, in order (after the configuration limit); clone URLs without credentials. */
  layers: Array<{ clone_url: string; commit: string; playbook: string }>;
  ansible_limit: string;
  ansible_passthrough: string;
  configuration_limit: string;
  /**
   * The target groups the image is a member of: plays select hosts by group, so the same image
   * in another group can come out different. Sorted, without duplicates.
   */
  groups: string[];
  /** The runner's version (`RUNNER_VERSION`). */
  runner_version: string;
}

/**
 * The input fingerprint: sha256 over a canonical form of the inputs (positional JSON, so key
 * order can never change it). Layer names are left out: renaming a layer changes no byte.
 */
export function fingerprint(inputs: FingerprintInputs): string {
  const canonical = JSON.stringify([
    FINGERPRINT_SCHEME,
    inputs.runner_version,
    inputs.rootfs_sha256,
    inputs.layers.map((l) => [redactCloneUrl(l.clone_url), l.commit, l.playbook]),
    inputs.ansible_limit,
    inputs.ansible_passthrough,
    inputs.configuration_limit,
    [...new Set(inputs.groups)].sort(),
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** The first 12 hex digits: what names and summaries show. */
export function shortFingerprint(value: string): string {
  return value.slice(0, 12);
}

/** The fingerprint inputs of pinned layers, credentials redacted. */
export function layerInputs(layers: ReadonlyArray<Pick<PinnedLayer, 'clone_url' | 'commit' | 'playbook'>>): FingerprintInputs['layers'] {
  return layers.map((l) => ({ clone_url: redactCloneUrl(l.clone_url), commit: l.commit, playbook: l.playbook }));
}

/**
 * The inputs of one source image of a session, as stage-image records them: the session's pinned
 * layers and ansible settings, the groups the image is a member of, and its rootfs digest.
 */
export function sessionImageInputs(session: SessionRecord, imageId: string, rootfsSha256: string, runnerVersion: string): FingerprintInputs {
  return {
    rootfs_sha256: rootfsSha256,
    layers: layerInputs(session.status.layers),
    ansible_limit: session.ansible.limit,
    ansible_passthrough: session.ansible.passthrough,
    configuration_limit: session.configuration.limit,
    groups: session.target.groups.filter((g) => g.members.includes(imageId)).map((g) => g.name),
    runner_version: runnerVersion,
  };
}

/** The fingerprint of one source image of a session (what stage-image writes to `status.plan[i].fingerprint`). */
export function sessionImageFingerprint(session: SessionRecord, imageId: string, rootfsSha256: string, runnerVersion: string): string {
  return fingerprint(sessionImageInputs(session, imageId, rootfsSha256, runnerVersion));
}
