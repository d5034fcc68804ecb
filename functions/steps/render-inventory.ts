import { ValidationError } from '../core/errors.ts';
import { parsePassthrough } from '../core/sessions/passthrough.ts';
import type { SessionRecord, StagedImage } from '../core/model/session.ts';
import { endStep, startStep } from '../core/workflow/step-progress.ts';
import { runDocumentSchema, type RunDocument } from '../runner/run-document.ts';
import { sessionKeys } from '../core/workflow/session-keys.ts';
import type { StepPorts } from './step-ports.ts';
import { loadActiveSession, sourceImageIds } from './validate-image.ts';

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

export interface RenderInventoryOutput {
  document_key: string;
  timeout_seconds: number;
}

/**
 * render-inventory: renders the inventory and writes the runner's run document (plan, layers
 * as pinned at creation, Ansible options) to the artifact store. Writing it twice writes the
 * same document.
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
      upload_prefix: p.upload_prefix,
    })),
    inventory: renderInventory(session),
    layers: session.status.layers.map((l, index) => ({ index, name: l.name, clone_url: l.clone_url, commit: l.commit, playbook: l.playbook })),
    ansible: {
      // Without a limit the run is limited to the session's images, so nothing else can be targeted.
      limit: session.ansible.limit || ids.join(','),
      verbosity: session.ansible.verbosity,
      passthrough: parsePassthrough(session.ansible.passthrough),
    },
    squashfs: settings.squashfs,
    allowed_schemes: settings.allowedCloneSchemes,
    outcome_key: sessionKeys.runnerOutcome(session.name),
    logs_prefix: sessionKeys.logsPrefix(session.name),
    progress_key: sessionKeys.runnerProgress(session.name),
    ...(session.debug_on_failure ? { debug_hold: true } : {}),
    timeout_seconds: settings.runnerTimeoutSeconds,
  };
  const checked = runDocumentSchema.safeParse(document);
  if (!checked.success) {
    const issue = checked.error.issues[0]!;
    throw new ValidationError(`the session cannot be run: ${issue.path.join('.')}: ${issue.message}`, issue.path.join('.'));
  }
  const documentKey = sessionKeys.runDocument(session.name);
  await ports.artifacts.put(documentKey, JSON.stringify(document, null, 2), { contentType: 'application/json' });
  // A stale outcome (or progress) from an earlier attempt must never be mistaken for this run's.
  await ports.artifacts.delete(sessionKeys.runnerOutcome(session.name));
  await ports.artifacts.delete(sessionKeys.runnerProgress(session.name));

  const stamp = ports.clock.now().toISOString();
  await ports.sessions.update(session.name, (s) =>
    startStep(endStep(startStep(s, { name: 'inventory' }, stamp), { name: 'inventory' }, 'succeeded', stamp), { name: 'ansible' }, stamp),
  );
  return { document_key: documentKey, timeout_seconds: settings.runnerTimeoutSeconds };
}
