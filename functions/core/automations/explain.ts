import type { ImageRecord } from '../model/image.ts';
import type { BuildInputs } from './automation-record.ts';
import { FINGERPRINT_METADATA_KEY, shortFingerprint } from './fingerprint.ts';

/**
 * Why a build would happen: the differences between the inputs of an earlier build (the
 * baseline) and the inputs now, each as a structured change and a sentence.
 */

export type ChangeKind =
  | 'first_build'
  | 'new_source'
  | 'source_rootfs'
  | 'layer_commit'
  | 'layer_changed'
  | 'layer_added'
  | 'layer_removed'
  | 'layer_order'
  | 'settings'
  | 'runner'
  | 'unexplained';

export interface PlanChange {
  kind: ChangeKind;
  text: string;
  layer?: string;
  from?: string;
  to?: string;
  branch?: string;
}

/** What an earlier build used, as far as its record shows. */
export interface Baseline {
  /** How the sentences name it: "the last build (session x)" or "image 'y' (id)". */
  described: string;
  source?: { id: string; name?: string; rootfs_sha256?: string };
  layers?: Array<{ name: string; clone_url: string; commit: string; playbook: string }>;
  settings?: BuildInputs['settings'];
  runner_version?: string;
  fingerprint?: string;
}

/** The inputs of the build being planned. */
export interface CurrentInputs {
  source: { id: string; name: string; rootfs_sha256: string };
  layers: Array<{ name: string; clone_url: string; commit: string; playbook: string; branch?: string }>;
  settings: BuildInputs['settings'];
  runner_version: string;
  fingerprint: string;
}

const short = (commit: string) => commit.slice(0, 12);

/** The baseline an automation's last build recorded. */
export function baselineFromBuild(build: BuildInputs): Baseline {
  return {
    described: `the last build (session ${build.session}, ${build.time})`,
    source: build.source,
    layers: build.layers,
    settings: build.settings,
    runner_version: build.runner_version,
    fingerprint: build.fingerprint,
  };
}

/**
 * The baseline a result image's lineage metadata gives (`cfs_source_image_id`, `cfs_layers`,
 * `cfs_fingerprint`); undefined when it carries none of them, so nothing can be compared.
 */
export function baselineFromImage(image: ImageRecord): Baseline | undefined {
  const metadata = image.metadata ?? {};
  if (!metadata.cfs_source_image_id && !metadata.cfs_layers && !metadata[FINGERPRINT_METADATA_KEY]) return undefined;
  let layers: Baseline['layers'];
  try {
    const parsed = JSON.parse(metadata.cfs_layers ?? '') as unknown;
    if (Array.isArray(parsed)) layers = parsed as Baseline['layers'];
  } catch {
    layers = undefined;
  }
  return {
    described: `image '${image.name}' (${image.id})`,
    ...(metadata.cfs_source_image_id ? { source: { id: metadata.cfs_source_image_id } } : {}),
    ...(layers ? { layers } : {}),
    ...(metadata[FINGERPRINT_METADATA_KEY] ? { fingerprint: metadata[FINGERPRINT_METADATA_KEY] } : {}),
  };
}

function layerChanges(before: NonNullable<Baseline['layers']>, now: CurrentInputs['layers']): PlanChange[] {
  const changes: PlanChange[] = [];
  const earlier = new Map(before.map((l) => [l.name, l]));
  for (const layer of now) {
    const old = earlier.get(layer.name);
    if (!old) {
      changes.push({ kind: 'layer_added', layer: layer.name, to: layer.commit, text: `layer '${layer.name}' was added (${layer.clone_url} @ ${short(layer.commit)}, ${layer.playbook})` });
      continue;
    }
    if (old.clone_url !== layer.clone_url || old.playbook !== layer.playbook) {
      changes.push({
        kind: 'layer_changed',
        layer: layer.name,
        text: `layer '${layer.name}' now runs ${layer.playbook} from ${layer.clone_url} (was ${old.playbook} from ${old.clone_url})`,
      });
    }
    if (old.commit !== layer.commit) {
      changes.push({
        kind: 'layer_commit',
        layer: layer.name,
        from: old.commit,
        to: layer.commit,
        ...(layer.branch ? { branch: layer.branch } : {}),
        text: `layer '${layer.name}' moved from commit ${short(old.commit)} to ${short(layer.commit)}${layer.branch ? ` (branch ${layer.branch})` : ''}`,
      });
    }
  }
  const current = new Set(now.map((l) => l.name));
  for (const old of before) {
    if (!current.has(old.name)) changes.push({ kind: 'layer_removed', layer: old.name, from: old.commit, text: `layer '${old.name}' was removed` });
  }
  const sharedBefore = before.map((l) => l.name).filter((n) => current.has(n));
  const sharedNow = now.map((l) => l.name).filter((n) => earlier.has(n));
  if (sharedBefore.join('\u0000') !== sharedNow.join('\u0000')) {
    changes.push({ kind: 'layer_order', text: `the layers run in a new order: ${sharedNow.join(', ')} (was ${sharedBefore.join(', ')})` });
  }
  return changes;
}

function settingChanges(before: BuildInputs['settings'], now: BuildInputs['settings']): PlanChange[] {
  const changes: PlanChange[] = [];
  for (const key of ['ansible_limit', 'ansible_passthrough', 'configuration_limit'] as const) {
    if (before[key] !== now[key]) changes.push({ kind: 'settings', from: before[key], to: now[key], text: `${key} changed from '${before[key]}' to '${now[key]}'` });
  }
  const groupsBefore = [...before.groups].sort().join(', ');
  const groupsNow = [...now.groups].sort().join(', ');
  if (groupsBefore !== groupsNow) changes.push({ kind: 'settings', from: groupsBefore, to: groupsNow, text: `groups changed from [${groupsBefore}] to [${groupsNow}]` });
  return changes;
}

/**
 * The differences between a baseline and the inputs now. Empty when nothing the baseline's
 * record shows has changed and its fingerprint (if known) is the same. With no baseline: a
 * first build (`firstText` says which kind).
 */
export function explainChanges(baseline: Baseline | undefined, now: CurrentInputs, firstText: string): PlanChange[] {
  if (!baseline) return [{ kind: 'first_build', text: firstText }];
  const changes: PlanChange[] = [];
  if (baseline.source && baseline.source.id !== now.source.id) {
    const was = baseline.source.name ? `'${baseline.source.name}' (${baseline.source.id})` : baseline.source.id;
    changes.push({ kind: 'new_source', from: baseline.source.id, to: now.source.id, text: `new source image '${now.source.name}' (${now.source.id}); ${baseline.described} used ${was}` });
  } else if (baseline.source?.rootfs_sha256 && baseline.source.rootfs_sha256 !== now.source.rootfs_sha256) {
    changes.push({
      kind: 'source_rootfs',
      from: baseline.source.rootfs_sha256,
      to: now.source.rootfs_sha256,
      text: `source image '${now.source.name}' has a new rootfs (sha256 ${short(baseline.source.rootfs_sha256)} -> ${short(now.source.rootfs_sha256)})`,
    });
  }
  if (baseline.layers) changes.push(...layerChanges(baseline.layers, now.layers));
  if (baseline.settings) changes.push(...settingChanges(baseline.settings, now.settings));
  if (baseline.runner_version && baseline.runner_version !== now.runner_version) {
    changes.push({ kind: 'runner', from: baseline.runner_version, to: now.runner_version, text: `the runner changed from ${baseline.runner_version} to ${now.runner_version}` });
  }
  if (changes.length === 0 && baseline.fingerprint && baseline.fingerprint !== now.fingerprint) {
    changes.push({
      kind: 'unexplained',
      from: baseline.fingerprint,
      to: now.fingerprint,
      text: `the inputs differ from ${baseline.described} (fingerprint ${shortFingerprint(baseline.fingerprint)} -> ${shortFingerprint(now.fingerprint)}) in what its record does not show: ansible settings, groups, the source's rootfs or the runner`,
    });
  }
  return changes;
}
