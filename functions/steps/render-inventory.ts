import { ValidationError } from '../core/errors.ts';
import { parsePassthrough } from '../core/sessions/passthrough.ts';
import type { SessionRecord, StagedImage } from '../core/model/session.ts';
import { endStep, startStep } from '../core/workflow/step-progress.ts';
import { runDocumentSchema, type RunDocument, type RunLayer } from '../core/workflow/run-document.ts';
import { newRunnerToken, readRunDocument, removeRunnerObjects, runnerLocations } from '../core/workflow/run-document-store.ts';
import { runnerKeys, sessionKeys } from '../core/workflow/session-keys.ts';
import type { SourceAccessDocument } from '../core/sources/source-access-document.ts';
import { DEFAULT_LAYER_CACHE_SETTINGS, type StepPorts, type WorkflowSettings } from './step-ports.ts';
import { loadActiveSession, sourceImageIds } from './validate-images.ts';
import { validationBudgetSeconds } from '../core/sessions/validation-spec.ts';

/** The runner's budget never passes this: RunAnsible's own bound is 24 h, and the runner must stop (and clean up) first. */
const MAX_RUNNER_SECONDS = 86_000;

/**
 * The Ansible inventory of an image session: hosts are the source image IDs; `cfs_image` holds
 * all of them with the chroot connection (the runner adds each host's `ansible_host`, its staged
 * root); each target group lists its members. Only the given groups exist.
 */
export function renderInventory(session: SessionRecord): { all: { children: Record<string, unknown> } } {
  const hostsOf = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, {}]));
  const children: Record<string, unknown> = {
    cfs_image: {
      hosts: hostsOf(sourceImageIds(session)),
      vars: {
        ansible_connection: 'community.general.chroot',
        ansible_python_interpreter: '/usr/bin/python3',
        cray_cfs_image: true,
      },
    },
  };
  for (const group of session.target.groups) children[group.name] = { hosts: hostsOf([...new Set(group.members)]) };
  return { all: { children } };
}

/**
 * The run's layer cache (issue 19): with the setting on, every layer's change set is recorded and,
 * unless the session asked for a full run, entries younger than the maximum age are reused; with it
 * off, the document has none and the runner records and reuses nothing.
 */
export function layerCacheOf(session: SessionRecord, settings: WorkflowSettings): Pick<RunDocument, 'layer_cache'> {
  const cache = settings.layerCache ?? DEFAULT_LAYER_CACHE_SETTINGS;
  if (!cache.enabled) return {};
  return { layer_cache: { reuse: session.layer_cache !== false, max_age_seconds: cache.maxAgeSeconds } };
}

export interface RenderInventoryOutput {
  document_key: string;
  timeout_seconds: number;
}

/**
 * A source-backed layer's source for the runner: the name of its secret (never the secret) and
 * its CA bundle, as they are now. A source deleted since the session was created fails the step.
 */
async function runLayerSource(ports: StepPorts, name: string | undefined): Promise<Pick<RunLayer, 'source'>> {
  if (name === undefined) return {};
  const source = await ports.sources?.get(name);
  if (!source) throw new ValidationError(`source '${name}' does not exist (any more)`, 'configuration_name');
  return { source: { name, secret_name: source.credentials.secret_name, ...(source.ca_cert?.pem !== undefined ? { ca_pem: source.ca_cert.pem } : {}) } };
}

/**
 * AWS: a session whose layers name sources gets, under its runner prefix only, credentials that
 * read exactly those sources' secrets and expire within the hour. Never in the step's output
 * (Step Functions' history and logs keep it) nor the task's overrides (DescribeTasks shows them).
 * Without the port (one machine) the engine pipes the logins to its runner instead.
 */
async function writeSourceAccess(ports: StepPorts, session: string, document: RunDocument, key: string): Promise<void> {
  const secrets = [...new Set(document.layers.flatMap((l) => (l.source ? [l.source.secret_name] : [])))].sort();
  if (secrets.length === 0 || !ports.sourceAccess) return;
  const credentials = await ports.sourceAccess.issue(session, secrets);
  const access: SourceAccessDocument = {
    secrets,
    credentials: { access_key_id: credentials.accessKeyId, secret_access_key: credentials.secretAccessKey, session_token: credentials.sessionToken, expiration: credentials.expiration },
  };
  await ports.artifacts.put(key, JSON.stringify(access), { contentType: 'application/json' });
}

/**
 * render-inventory: renders the inventory and writes the run document (plan, layers as pinned at
 * creation, Ansible options, the session's validation when it has one) twice: the control
 * plane's at `sessions/<name>/run-document.json` and the runner's copy under a fresh unguessable
 * prefix `runner/<token>/`, where every key the runner writes lies (outcome, progress, logs,
 * results). Running it again starts a fresh prefix and removes the one it replaces, so nothing
 * of an earlier attempt is mistaken for this run's.
 */
export async function renderInventoryStep(
  ports: StepPorts,
  input: { session: string },
): Promise<RenderInventoryOutput> {
  const session = await loadActiveSession(ports, input.session);
  const ids = sourceImageIds(session);
  const plan = ids.map((id) => session.status.plan?.find((p) => p.image_id === id));
  if (plan.some((p) => !p)) throw new ValidationError(`session '${session.name}' has images that were never staged`);
  const staged = plan as StagedImage[];
  const settings = await ports.settings();
  const names = staged.map((p) => p.result_name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new ValidationError(`two images would get the same result name '${duplicate}'; give them distinct names with the image map`, 'target.image_map');
  // The boot test runs qemu-system-x86_64 only: an aarch64 result would only time out there.
  const foreign = session.validation?.boot ? staged.find((p) => p.arch !== 'x86_64') : undefined;
  if (foreign) {
    throw new ValidationError(`image ${foreign.image_id} is ${foreign.arch}: the boot test boots x86_64 images only (ask for checks alone for it)`, 'validation.boot');
  }

  const keys = runnerKeys(newRunnerToken());
  // The layers' budget, and the time the proof may take on top (under RunAnsible's 24 h bound).
  const timeoutSeconds = Math.min(settings.runnerTimeoutSeconds + validationBudgetSeconds(session.validation, staged.length), MAX_RUNNER_SECONDS);
  const document: RunDocument = {
    session: session.name,
    images: staged.map((p) => ({
      image_id: p.image_id,
      source_name: p.source_name,
      arch: p.arch,
      rootfs: { key: p.rootfs.key, size: p.rootfs.size, sha256: p.rootfs.sha256 },
      ...(p.kernel ? { kernel: { key: p.kernel.key, size: p.kernel.size, sha256: p.kernel.sha256 } } : {}),
      ...(p.initrd ? { initrd: { key: p.initrd.key, size: p.initrd.size, sha256: p.initrd.sha256 } } : {}),
      result_name: p.result_name,
      result_id: p.result_id,
      // The runner uploads under its own prefix; PackageAndUpload promotes to the result's keys.
      upload_prefix: keys.resultPrefix(p.result_id),
    })),
    inventory: renderInventory(session),
    layers: await Promise.all(
      session.status.layers.map(async (l, index) => ({ index, name: l.name, clone_url: l.clone_url, commit: l.commit, playbook: l.playbook, ...(await runLayerSource(ports, l.source)) })),
    ),
    ansible: {
      // Without a limit the run is limited to the session's images, so nothing else can be targeted.
      limit: session.ansible.limit || ids.join(','),
      verbosity: session.ansible.verbosity,
      passthrough: parsePassthrough(session.ansible.passthrough),
    },
    squashfs: settings.squashfs,
    allowed_schemes: settings.allowedCloneSchemes,
    outcome_key: keys.outcome,
    logs_prefix: keys.logsPrefix,
    progress_key: keys.progress,
    ...(session.debug_on_failure ? { debug_hold: true } : {}),
    // Only a session that asked for proof gets checks and a boot test (sample images cannot boot).
    ...(session.validation ? { validation: session.validation } : {}),
    timeout_seconds: timeoutSeconds,
    ...(session.status.session.job ? { job: session.status.session.job } : {}),
    ...layerCacheOf(session, settings),
  };
  const checked = runDocumentSchema.safeParse(document);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new ValidationError(`the session cannot be run: ${issue.path.join('.')}: ${issue.message}`, issue.path.join('.'));
  }
  const replaced = runnerLocations(session.name, await readRunDocument(ports.artifacts, session.name));
  const body = JSON.stringify(document, null, 2);
  await writeSourceAccess(ports, session.name, document, keys.sourceAccess);
  // The runner's copy first: the control-plane document never names a prefix with nothing in it.
  await ports.artifacts.put(keys.runDocument, body, { contentType: 'application/json' });
  await ports.artifacts.put(sessionKeys.runDocument(session.name), body, { contentType: 'application/json' });
  // What an earlier attempt left (its outcome, progress, logs, uploads) goes with its prefix.
  if (replaced.prefix !== keys.prefix) await removeRunnerObjects(ports.artifacts, replaced.prefix);

  const stamp = ports.clock.now().toISOString();
  await ports.sessions.update(session.name, (s) =>
    startStep(endStep(startStep(s, { name: 'inventory' }, stamp), { name: 'inventory' }, 'succeeded', stamp), { name: 'ansible' }, stamp),
  );
  return { document_key: keys.runDocument, timeout_seconds: timeoutSeconds };
}
