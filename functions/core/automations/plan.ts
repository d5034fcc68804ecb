import { findArtifact } from '../images/manifest.ts';
import type { ConfigurationLayer, ConfigurationRecord } from '../model/configuration.ts';
import type { ImageArch, ImageRecord } from '../model/image.ts';
import type { PinnedLayer, SessionRecord } from '../model/session.ts';
import { layerName, pinLayers } from '../sessions/configuration-limit.ts';
import { redactCloneUrl } from '../workflow/redact.ts';
import type { AutomationRecord, AutomationTrigger, BuildInputs } from './automation-record.ts';
import { configurationProblem } from './automation-rules.ts';
import type { Evaluation } from './evaluation.ts';
import { baselineFromBuild, baselineFromImage, explainChanges, type Baseline, type PlanChange } from './explain.ts';
import { AUTOMATION_METADATA_KEY, fingerprint, layerInputs, shortFingerprint } from './fingerprint.ts';
import { compileGlob } from './glob.ts';
import { renderResultName, templateDate } from './result-name.ts';
import { automationSessionName } from './session-name.ts';

/** A layer as a plan shows it: the commit it would run and, when its branch moved, the commit the configuration still pins. */
export interface PlannedLayer {
  name: string;
  clone_url: string;
  playbook: string;
  commit: string;
  branch?: string;
  /** Automation plans: the commit the configuration still pins, when the branch has moved past it (the build runs `commit`). */
  pinned_commit?: string;
  /** Session plans: the branch's current commit, when it has moved past the pinned `commit` (the session runs `commit`). */
  branch_head?: string;
}

/**
 * What an automation would do now and why, computed without writing anything: `build` (with
 * the source, the layers, the fingerprint, the result and session names), `skip` (nothing
 * changed, or nothing to build from) or `fail` (the automation cannot run as it stands).
 */
export interface AutomationPlan {
  automation: string;
  configuration: string;
  trigger: AutomationTrigger | 'plan';
  action: 'build' | 'skip' | 'fail';
  reasons: string[];
  changes: PlanChange[];
  fingerprint?: string;
  source?: { id: string; name: string; arch: ImageArch; created: string; rootfs_sha256: string };
  layers?: PlannedLayer[];
  settings?: BuildInputs['settings'];
  result_name?: string;
  session_name?: string;
  /** Images that already carry the fingerprint. */
  already_built?: Array<{ id: string; name: string }>;
  /** The configuration's branches moved past the commits it pins: a build stores the new ones first (as a PATCH does). */
  configuration_moved: boolean;
}

/** Newest first: by creation time, then by when the rootfs was registered, then by id. */
export function newestFirst(a: ImageRecord, b: ImageRecord): number {
  return b.created.localeCompare(a.created) || (b.rootfs_registered ?? '').localeCompare(a.rootfs_registered ?? '') || b.id.localeCompare(a.id);
}

/** The newest image that matches the source selector and may be its source (see Evaluation.sourceProblem). */
async function pickSource(evaluation: Evaluation, automation: AutomationRecord): Promise<{ image?: ImageRecord; reason: string }> {
  const glob = compileGlob(automation.source.name_pattern);
  const candidates = (await evaluation.images())
    .filter((image) => image.rootfs_registered && glob.test(image.name) && (!automation.source.arch || image.arch === automation.source.arch))
    .sort(newestFirst);
  let results = 0;
  for (const image of candidates) {
    if (await evaluation.sourceProblem(image, automation)) {
      results++;
      continue;
    }
    return { image, reason: '' };
  }
  const arch = automation.source.arch ? ` (${automation.source.arch})` : '';
  const skipped = results ? `; ${results} matching image(s) are results of automations, which are not its sources` : '';
  return { reason: `no image matches '${automation.source.name_pattern}'${arch} with a registered rootfs${skipped}` };
}

function sameLayer(layer: ConfigurationLayer, index: number, pinned: PinnedLayer): boolean {
  return layerName(layer, index) === pinned.name && layer.clone_url === pinned.clone_url && layer.playbook === pinned.playbook && layer.commit === pinned.commit;
}

/** Branch layers re-resolved to their branches' current commits (one git call per repository and branch per evaluation). */
export async function resolveConfiguration(evaluation: Evaluation, configuration: ConfigurationRecord): Promise<ConfigurationRecord> {
  const layers = await Promise.all(
    configuration.layers.map(async (layer) => (layer.branch === undefined ? layer : { ...layer, commit: await evaluation.resolveBranch(layer.clone_url, layer.branch) })),
  );
  return { ...configuration, layers };
}

export function plannedLayers(configuration: ConfigurationRecord, resolved: ConfigurationRecord, limit: string): { layers: PlannedLayer[]; pinned: PinnedLayer[] } {
  const stored = pinLayers(configuration, limit);
  const pinned = pinLayers(resolved, limit);
  let cursor = 0;
  const layers = pinned.map((layer, i) => {
    // The limit picks the same layers of both; walk the configuration to find each one's branch.
    while (cursor < configuration.layers.length && !sameLayer(configuration.layers[cursor]!, cursor, stored[i]!)) cursor++;
    const branch = configuration.layers[cursor++]?.branch;
    const storedCommit = stored[i]!.commit;
    return {
      name: layer.name,
      clone_url: redactCloneUrl(layer.clone_url),
      playbook: layer.playbook,
      commit: layer.commit,
      ...(branch !== undefined ? { branch } : {}),
      ...(storedCommit !== layer.commit ? { pinned_commit: storedCommit } : {}),
    };
  });
  return { layers, pinned };
}

/** The newest image this automation made (by its `cfs_automation` mark): the baseline when no build is recorded. */
async function newestOwnResult(evaluation: Evaluation, automation: string): Promise<ImageRecord | undefined> {
  return (await evaluation.images()).filter((image) => image.metadata?.[AUTOMATION_METADATA_KEY] === automation).sort(newestFirst)[0];
}

/** Why planning stops short of a build: the plan's action and its one reason. */
interface Stop {
  stop: 'fail' | 'skip';
  reason: string;
}

const failed = (reason: string): Stop => ({ stop: 'fail', reason });

function isStop<T>(value: T | Stop): value is Stop {
  return typeof value === 'object' && value !== null && 'stop' in value;
}

/**
 * The layers a build would run: the configuration must exist and be runnable; unless an image
 * event triggered the plan, its branches are re-resolved first. `moved` says the branches have
 * moved past the commits the configuration pins.
 */
async function planLayers(
  evaluation: Evaluation,
  automation: AutomationRecord,
  trigger: AutomationPlan['trigger'],
): Promise<{ planned: ReturnType<typeof plannedLayers>; moved: boolean } | Stop> {
  const configuration = await evaluation.configuration(automation.configuration_name);
  if (!configuration) return failed(`configuration '${automation.configuration_name}' does not exist`);
  const problem = configurationProblem(configuration);
  if (problem) return failed(problem);
  let resolved = configuration;
  if (trigger !== 'image_registered') {
    try {
      resolved = await resolveConfiguration(evaluation, configuration);
    } catch (error) {
      return failed(`cannot resolve the branches of configuration '${configuration.name}': ${(error as Error).message}`);
    }
  }
  let planned: ReturnType<typeof plannedLayers>;
  try {
    planned = plannedLayers(configuration, resolved, automation.configuration_limit);
  } catch (error) {
    return failed((error as Error).message);
  }
  return { planned, moved: configuration.layers.some((layer, i) => layer.commit !== resolved.layers[i]!.commit) };
}

/** The source image (the event's, or the newest that matches) and its rootfs digest, which the fingerprint covers. */
async function planSource(
  evaluation: Evaluation,
  automation: AutomationRecord,
  eventImage: ImageRecord | undefined,
): Promise<{ image: ImageRecord; rootfsSha256: string } | Stop> {
  let image = eventImage;
  if (!image) {
    const picked = await pickSource(evaluation, automation);
    if (!picked.image) return { stop: 'skip', reason: picked.reason };
    image = picked.image;
  }
  let rootfsSha256: string | undefined;
  try {
    rootfsSha256 = findArtifact(await evaluation.manifest(image), 'rootfs')?.sha256;
  } catch (error) {
    return failed(`source image '${image.name}' (${image.id}): ${(error as Error).message}`);
  }
  if (!rootfsSha256) return { stop: 'skip', reason: `source image '${image.name}' (${image.id}) has no rootfs with a sha256 in its manifest` };
  return { image, rootfsSha256 };
}

/** The automation's settings a build runs with (and the fingerprint covers); groups sorted, so their order changes nothing. */
function buildSettings(automation: AutomationRecord): BuildInputs['settings'] {
  return {
    ansible_limit: automation.ansible_limit,
    ansible_passthrough: automation.ansible_passthrough,
    configuration_limit: automation.configuration_limit,
    groups: [...automation.groups].sort(),
  };
}

/** The result image's name from the automation's template, or why the template cannot make one. */
function planResultName(evaluation: Evaluation, automation: AutomationRecord, source: ImageRecord, value: string): { resultName: string } | Stop {
  try {
    return {
      resultName: renderResultName(automation.result_name_template, {
        source_name: source.name,
        automation: automation.name,
        date: templateDate(evaluation.ports.clock.now()),
        fingerprint: shortFingerprint(value),
      }),
    };
  } catch (error) {
    return failed((error as Error).message);
  }
}

/** What the changes are measured against: the last recorded build, else the newest image this automation made. */
async function planBaseline(evaluation: Evaluation, automation: AutomationRecord): Promise<Baseline | undefined> {
  if (automation.last_build) return baselineFromBuild(automation.last_build);
  const own = await newestOwnResult(evaluation, automation.name);
  return own ? baselineFromImage(own) : undefined;
}

/**
 * Why a build runs: the changes since the baseline, led by a note when images already carry the
 * fingerprint (only_if_changed is off), or, when nothing changed, why the same inputs build again.
 */
function buildReasons(changes: PlanChange[], built: Array<{ id: string; name: string }>, baseline: Baseline | undefined, value: string): string[] {
  const reasons = changes.map((c) => c.text);
  if (built.length > 0) {
    reasons.unshift(`only_if_changed is false: rebuilding although image '${built[0]!.name}' (${built[0]!.id}) already carries fingerprint ${shortFingerprint(value)}`);
  } else if (changes.length === 0) {
    const same = baseline!.fingerprint === value ? 'the inputs are those of' : 'the source and layers are those of';
    reasons.push(`${same} ${baseline!.described}, but no image carries fingerprint ${shortFingerprint(value)} (that build failed, is still running, or its result was deleted)`);
  }
  return reasons;
}

/**
 * Plans one automation. `trigger` decides where the source and the commits come from: an
 * `Image Registered` event builds from that image with the commits the configuration pins; a
 * schedule, `run` and `plan` pick the newest matching image and re-resolve the branches first.
 */
export async function planAutomation(
  evaluation: Evaluation,
  automation: AutomationRecord,
  trigger: AutomationPlan['trigger'],
  eventImage?: ImageRecord,
): Promise<AutomationPlan> {
  const base = { automation: automation.name, configuration: automation.configuration_name, trigger, changes: [], configuration_moved: false };
  const stopped = ({ stop, reason }: Stop): AutomationPlan => ({ ...base, action: stop, reasons: [reason] });

  const layers = await planLayers(evaluation, automation, trigger);
  if (isStop(layers)) return stopped(layers);
  const source = await planSource(evaluation, automation, eventImage);
  if (isStop(source)) return stopped(source);
  const settings = buildSettings(automation);
  const { runnerVersion } = evaluation.ports;
  const value = fingerprint({ rootfs_sha256: source.rootfsSha256, layers: layerInputs(layers.planned.pinned), ...settings, runner_version: runnerVersion });
  const named = planResultName(evaluation, automation, source.image, value);
  if (isStop(named)) return stopped(named);

  const built = (await evaluation.imagesWithFingerprint(value)).map((image) => ({ id: image.id, name: image.name }));
  const sourceView = { id: source.image.id, name: source.image.name, arch: source.image.arch, created: source.image.created, rootfs_sha256: source.rootfsSha256 };
  const full: AutomationPlan = {
    ...base,
    action: 'build',
    reasons: [],
    fingerprint: value,
    source: sourceView,
    layers: layers.planned.layers,
    settings,
    result_name: named.resultName,
    already_built: built,
    configuration_moved: layers.moved,
  };
  if (automation.only_if_changed && built.length > 0) {
    const first = built[0]!;
    return { ...full, action: 'skip', reasons: [`nothing changed: image '${first.name}' (${first.id}) already carries fingerprint ${shortFingerprint(value)}`] };
  }

  const baseline = await planBaseline(evaluation, automation);
  const firstText = eventImage
    ? `new source image '${source.image.name}' (${source.image.id}) was registered`
    : `first build of this automation: no earlier build to compare with`;
  const changes = explainChanges(baseline, { source: sourceView, layers: layers.planned.layers, settings, runner_version: runnerVersion, fingerprint: value }, firstText);
  return { ...full, changes, reasons: buildReasons(changes, built, baseline, value) };
}

/**
 * The session name a build takes: the first of the automation's deterministic names for the
 * fingerprint that is free, or `busy` with the session that already builds (or, for an event,
 * already built) these inputs. A finished session with these inputs that left no result image
 * (it failed, or its image was deleted) makes a rebuild take the next name (`-2`, `-3`, ...),
 * except on an event, where a session of that name means the event was already handled.
 */
export async function sessionSlot(
  evaluation: Evaluation,
  automation: string,
  value: string,
  trigger: AutomationPlan['trigger'],
): Promise<{ name: string; busy?: SessionRecord }> {
  const maxAttempts = 50;
  let last: SessionRecord | undefined;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const name = automationSessionName(automation, value, attempt);
    const session = await evaluation.ports.sessions.get(name);
    if (!session) return { name };
    last = session;
    if (session.status.session.status !== 'complete' || trigger === 'image_registered') return { name, busy: session };
  }
  return { name: last!.name, busy: last! };
}
