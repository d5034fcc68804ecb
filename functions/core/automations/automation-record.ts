import type { ImageArch } from '../model/image.ts';
import type { ValidationSpec } from '../sessions/validation-spec.ts';

/**
 * The stored shape of an automation: what a user PUT (`AutomationSpec`, defaults applied) plus
 * what the trigger keeps (the inputs of its last build and a bounded history of runs and skips).
 */

export type AutomationTrigger = 'image_registered' | 'schedule' | 'run';

export interface AutomationSpec {
  configuration_name: string;
  /** `include_automation_results`: results of other automations may be sources (chains); never this one's own. */
  source: { name_pattern: string; arch?: ImageArch; include_automation_results?: boolean };
  /** Target groups the source image joins (each a group of that one image). */
  groups: string[];
  result_name_template: string;
  on_image_registered: boolean;
  schedule?: { expression: string; timezone: string };
  only_if_changed: boolean;
  configuration_limit: string;
  ansible_limit: string;
  ansible_config: string;
  ansible_verbosity: number;
  ansible_passthrough: string;
  debug_on_failure: boolean;
  /** Checks and a boot test for every session it starts (issue 18); absent: none. */
  validation?: ValidationSpec;
  /** false: every session it starts is a full run (issue 19); absent: they may reuse cached layers. */
  layer_cache?: boolean;
}

/** The inputs of a build, recorded when the automation starts a session: what the next plan compares against. */
export interface BuildInputs {
  time: string;
  session: string;
  fingerprint: string;
  source: { id: string; name: string; rootfs_sha256: string };
  /** Credentials redacted. */
  layers: Array<{ name: string; clone_url: string; commit: string; playbook: string; branch?: string }>;
  settings: { ansible_limit: string; ansible_passthrough: string; configuration_limit: string; groups: string[] };
  runner_version: string;
}

/** One run or skip, newest first in `history`. */
export interface AutomationHistoryEntry {
  time: string;
  trigger: AutomationTrigger;
  outcome: 'started' | 'skipped' | 'failed';
  /** Why, in a sentence (several joined by '; '). */
  reason: string;
  session?: string;
  source_image_id?: string;
  source_name?: string;
  fingerprint?: string;
  /** Identical consecutive skips are kept as one entry: how many, and the last one's time. */
  repeated?: number;
  last_time?: string;
}

export interface AutomationRecord extends AutomationSpec {
  name: string;
  created: string;
  last_updated: string;
  last_build?: BuildInputs;
  history: AutomationHistoryEntry[];
}

/** How many history entries an automation keeps (identical consecutive skips count once). */
export const HISTORY_LIMIT = 50;

/** Adds `entry` at the front; folds it into the newest entry when that is the same skip (so runs stay visible). */
export function withHistory(history: AutomationHistoryEntry[], entry: AutomationHistoryEntry): AutomationHistoryEntry[] {
  const newest = history[0];
  if (
    newest &&
    entry.outcome === 'skipped' &&
    newest.outcome === 'skipped' &&
    newest.trigger === entry.trigger &&
    newest.reason === entry.reason &&
    newest.source_image_id === entry.source_image_id
  ) {
    return [{ ...newest, repeated: (newest.repeated ?? 1) + 1, last_time: entry.time }, ...history.slice(1)];
  }
  return [entry, ...history].slice(0, HISTORY_LIMIT);
}
