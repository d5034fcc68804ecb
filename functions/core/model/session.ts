import type { ValidationSpec } from '../sessions/validation-spec.ts';

/**
 * The stored shape of a session: CFS v3 field names (the canonical form); the v2 view is a
 * conversion at the API edge. What this product adds lives under `status`, which the CFS spec
 * leaves open, so clients generated from the spec keep working; the one exception is
 * `validation`, an opt-in request field that only sessions which asked for it carry.
 */

export type SessionStatus = 'pending' | 'running' | 'complete';
export type SessionSucceeded = 'none' | 'true' | 'false' | 'unknown';
export type TargetDefinition = 'image' | 'spec' | 'repo' | 'dynamic';

export interface TargetGroup {
  name: string;
  members: string[];
}

export interface ImageMapEntry {
  source_id: string;
  result_name: string;
}

/** A configuration layer as pinned on the session at creation time. */
export interface PinnedLayer {
  name: string;
  clone_url: string;
  commit: string;
  playbook: string;
  /** The CFS v3 source the layer names (its clone URL above is the source's at creation); render-inventory gives the runner its secret's name. */
  source?: string;
}

export interface SessionArtifact {
  image_id: string;
  result_id: string;
  type: 'ims_customized_image';
}

/** Progress of one workflow step (per image where `image_id` is set). */
export interface SessionStep {
  name: string;
  state: 'running' | 'succeeded' | 'failed' | 'skipped' | 'cached';
  start_time?: string;
  end_time?: string;
  image_id?: string;
  layer?: string;
  /** In a `test` step: the check this entry is (issue 18). */
  check?: string;
  /** In a `test` step: the boot test's entry, naming the accelerator it ran on. */
  boot?: 'kvm' | 'tcg';
  /** How long an ended check or boot test took. */
  duration_ms?: number;
  /** A `cached` layer (issue 19): the session that recorded the reused change set and when. */
  cached_from?: { session: string; created: string };
}

/**
 * A failed session's workspace kept for inspection (`debug_on_failure`) until `until`, or until
 * it is released; `released_at` says when the hold ended and the workspace was removed.
 */
export interface SessionDebugHold {
  until: string;
  released_at?: string;
  workspace: string;
  inventory: string;
  /** Each unpacked image root and a command that enters it. */
  images: Array<{ image_id: string; root: string; enter: string }>;
  /** Each layer's clone and the exact command that reruns it by hand. */
  layers: Array<{ index: number; name: string; directory: string; command: string }>;
}

export interface SessionFailure {
  step: string;
  reason: string;
  layer?: string;
  image_id?: string;
}

/** An artifact pinned by the staging plan: where it is and what its bytes must hash to. */
export interface PinnedArtifact {
  key: string;
  size: number;
  sha256: string;
  md5: string;
}

/** One source image as pinned by stage-image: its inputs and where its result goes. */
export interface StagedImage {
  image_id: string;
  source_name: string;
  arch: 'x86_64' | 'aarch64';
  rootfs: PinnedArtifact;
  kernel?: PinnedArtifact;
  initrd?: PinnedArtifact;
  boot_parameters?: PinnedArtifact;
  result_name: string;
  /** Allocated when staged, registered only after the runner's upload is verified. */
  result_id: string;
  /** Where the runner uploads the result's artifacts: `boot-images/<result_id>/`. */
  upload_prefix: string;
  /** The input fingerprint of this image's customization (see core/automations/fingerprint.ts); recorded on the result image too. */
  fingerprint?: string;
}

export interface SessionRecord {
  name: string;
  configuration: { name: string; limit: string };
  ansible: { config: string; limit: string; verbosity: number; passthrough: string };
  target: { definition: TargetDefinition; groups: TargetGroup[]; image_map: ImageMapEntry[] };
  tags: Record<string, string>;
  debug_on_failure: boolean;
  /** The proof asked for before registering (issue 18), defaults filled in; absent: no checks, no boot test. */
  validation?: ValidationSpec;
  /** `false`: the session asked for a full run, no layer reused from the layer cache (issue 19). Absent: reuse allowed. */
  layer_cache?: false;
  /**
   * Epoch seconds after which the completed session may be removed (`session_ttl` counted from
   * completion): the table's TTL attribute, so DynamoDB removes it in AWS. Not part of the API views.
   */
  expires_at?: number;
  status: {
    session: {
      status: SessionStatus;
      succeeded: SessionSucceeded;
      start_time: string;
      completion_time?: string;
      job?: string;
      ims_job?: string;
    };
    artifacts: SessionArtifact[];
    /** Layers (after configuration_limit) pinned at creation: later configuration edits never change a session. */
    layers: PinnedLayer[];
    /** The staging plan, one entry per unique source image (written by stage-image). */
    plan?: StagedImage[];
    steps?: SessionStep[];
    failure?: SessionFailure;
    /** The debug hold of a failed session with `debug_on_failure`. */
    debug?: SessionDebugHold;
    /**
     * Each source image's layer cache keys, by layer index (issue 19), from the runner's outcome:
     * where each layer's changes report is found (`layer-cache/changes/<key>.json`).
     */
    layer_keys?: Record<string, string[]>;
    /** Human-readable progress note, e.g. which image IDs are still awaited. */
    message?: string;
  };
}
