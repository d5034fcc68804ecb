import { findArtifact } from '../images/manifest.ts';
import { pinLayers } from '../sessions/configuration-limit.ts';
import { validateSessionRequest } from '../sessions/session-rules.ts';
import { v3SessionCreateSchema, type V3SessionCreateInput } from '../sessions/session-schemas.ts';
import { fieldError, parseOrThrow } from '../sessions/validation.ts';
import { configurationProblem } from './automation-rules.ts';
import { Evaluation, type EvaluationPorts } from './evaluation.ts';
import { baselineFromImage, explainChanges, type PlanChange } from './explain.ts';
import { fingerprint, layerInputs, shortFingerprint } from './fingerprint.ts';
import { newestFirst, plannedLayers, resolveConfiguration, type PlannedLayer } from './plan.ts';

/** One source image of a planned session. */
export interface SessionImagePlan {
  image_id: string;
  /** Registered with a rootfs: the session would stage it now (otherwise it would wait for it). */
  ready: boolean;
  source_name?: string;
  rootfs_sha256?: string;
  groups: string[];
  result_name?: string;
  fingerprint?: string;
  already_built: Array<{ id: string; name: string }>;
  reasons: string[];
  changes: PlanChange[];
}

/** What `cfs sessions plan` shows: what the session would build, its fingerprints and why; nothing is written. */
export interface SessionPlan {
  session: string;
  configuration: string;
  layers: PlannedLayer[];
  notes: string[];
  images: SessionImagePlan[];
  git_calls: number;
}

/**
 * Plans a session create request (the same body as `POST /sessions`) without creating it: the
 * checks a create makes (a 400 names the field), the layers it would pin, and per source image
 * the fingerprint, the result name and why it would be built: compared with the newest
 * earlier result of the same image and configuration (new source image, a layer moved from
 * commit A to B), or said to be built already (a session always runs, so it would build it
 * again). Branches are resolved too, to say where one has moved past the commit the
 * configuration pins (the session runs the pinned commit).
 */
export async function planSession(ports: EvaluationPorts, input: V3SessionCreateInput | Record<string, unknown>): Promise<SessionPlan> {
  const request = validateSessionRequest(parseOrThrow(v3SessionCreateSchema, input));
  const evaluation = new Evaluation(ports);
  const configuration = await evaluation.configuration(request.configuration_name);
  if (!configuration) throw fieldError('configuration_name', `configuration '${request.configuration_name}' does not exist`);
  const problem = configurationProblem(configuration);
  if (problem) throw fieldError('configuration_name', problem);
  const pinned = pinLayers(configuration, request.configuration_limit);

  const notes: string[] = [];
  if (await ports.sessions.get(request.name)) notes.push(`a session named '${request.name}' already exists: creating it would be refused (409)`);
  let resolved = configuration;
  try {
    resolved = await resolveConfiguration(evaluation, configuration);
  } catch (error) {
    notes.push(`the branches could not be checked: ${(error as Error).message}`);
  }
  const layers = plannedLayers(configuration, resolved, request.configuration_limit).layers.map(({ pinned_commit, commit, ...layer }) =>
    pinned_commit === undefined ? { ...layer, commit } : { ...layer, commit: pinned_commit, branch_head: commit },
  );
  for (const layer of layers) {
    if (layer.branch_head) {
      notes.push(
        `layer '${layer.name}': branch ${layer.branch} is now at ${layer.branch_head.slice(0, 12)}, but the configuration pins ${layer.commit.slice(0, 12)}, which the session runs (\`cfs configurations update ${configuration.name} --update-branches\` moves it)`,
      );
    }
  }

  const settings = {
    ansible_limit: request.ansible_limit,
    ansible_passthrough: request.ansible_passthrough,
    configuration_limit: request.configuration_limit,
  };
  const ids = [...new Set(request.target.groups.flatMap((g) => g.members))];
  const images = await Promise.all(
    ids.map(async (id): Promise<SessionImagePlan> => {
      const groups = request.target.groups.filter((g) => g.members.includes(id)).map((g) => g.name).sort();
      const image = await ports.images.get(id);
      const rootfs = image ? findArtifact(await evaluation.manifest(image), 'rootfs') : undefined;
      if (!image || !rootfs?.sha256) {
        return {
          image_id: id,
          ready: false,
          ...(image ? { source_name: image.name } : {}),
          groups,
          already_built: [],
          changes: [],
          reasons: [`image ${id} is not registered with a rootfs yet: the session would wait for it, and its fingerprint is known only then`],
        };
      }
      const resultName = request.target.image_map.find((m) => m.source_id === id)?.result_name ?? `${image.name}_cfs_${request.name}`;
      const value = fingerprint({ rootfs_sha256: rootfs.sha256, layers: layerInputs(pinned), ...settings, groups, runner_version: ports.runnerVersion });
      const built = (await evaluation.imagesWithFingerprint(value)).map((i) => ({ id: i.id, name: i.name }));
      const view = { image_id: id, ready: true, source_name: image.name, rootfs_sha256: rootfs.sha256, groups, result_name: resultName, fingerprint: value, already_built: built };
      if (built.length > 0) {
        return {
          ...view,
          changes: [],
          reasons: [`nothing changed: image '${built[0]!.name}' (${built[0]!.id}) already carries fingerprint ${shortFingerprint(value)}; a session always runs, so it would build it again`],
        };
      }
      const earlier = (await evaluation.images())
        .filter((i) => i.metadata?.cfs_source_image_id === id && i.metadata?.cfs_configuration === configuration.name)
        .sort(newestFirst)[0];
      const baseline = earlier ? baselineFromImage(earlier) : undefined;
      const changes = explainChanges(
        baseline,
        {
          source: { id, name: image.name, rootfs_sha256: rootfs.sha256 },
          layers: layers.map(({ name, clone_url, commit, playbook, branch }) => ({ name, clone_url, commit, playbook, ...(branch !== undefined ? { branch } : {}) })),
          settings: { ...settings, groups },
          runner_version: ports.runnerVersion,
          fingerprint: value,
        },
        `first build of image '${image.name}' with configuration '${configuration.name}': no earlier result to compare with`,
      );
      // Nothing differs and no image carries the fingerprint: the earlier result's record has none to compare.
      const reasons = changes.length
        ? changes.map((c) => c.text)
        : [`the source and layers are those of ${baseline!.described}, whose record carries no fingerprint to compare (ansible settings or groups may differ)`];
      return { ...view, changes, reasons };
    }),
  );
  return { session: request.name, configuration: configuration.name, layers, notes, images, git_calls: evaluation.gitCalls };
}
