import type { runnerKeys } from '../../functions/core/workflow/session-keys.ts';

interface StoredRootfs {
  key: string;
  size: number;
  sha256: string;
}

interface OneImageRun {
  image: { id: string; name: string; rootfs: StoredRootfs };
  result: { name: string; id: string; prefix: string };
  inventory: { all: { children: Record<string, unknown> } };
  layer: { name: string; url: string; commit: string; playbook: string };
  /** Where the runner writes its outcome and its layer logs. */
  keys: { outcome: string; logsPrefix: string };
}

/** A run document of one image and one layer; the only scheme it allows is the layer's own. */
function oneImageRunDocument(session: string, { image, result, inventory, layer, keys }: OneImageRun) {
  return {
    session,
    images: [{ image_id: image.id, source_name: image.name, arch: 'x86_64', rootfs: { key: image.rootfs.key, size: image.rootfs.size, sha256: image.rootfs.sha256 }, result_name: result.name, result_id: result.id, upload_prefix: result.prefix }],
    inventory,
    layers: [{ index: 0, name: layer.name, clone_url: layer.url, commit: layer.commit, playbook: layer.playbook }],
    ansible: { limit: image.id, verbosity: 0, passthrough: [] },
    squashfs: { compressor: 'source' },
    allowed_schemes: [new URL(layer.url).protocol.slice(0, -1)],
    outcome_key: keys.outcome,
    logs_prefix: keys.logsPrefix,
  };
}

/**
 * A control-plane run document (as RenderInventory leaves it) for `session`: one image, one layer
 * named `layer` cloned from `cloneUrl`, the result `result` uploaded under the runner's prefix, and
 * the runner's keys under `runner`.
 */
export function runDocumentFor(
  session: string,
  runner: ReturnType<typeof runnerKeys>,
  { image = '11111111-1111-4111-8111-111111111111', layer = 'base', playbook = 'a.yml', cloneUrl = 'file:///repo', result = 'r1', inventory = { all: { children: {} } } }: Partial<{ image: string; layer: string; playbook: string; cloneUrl: string; result: string; inventory: OneImageRun['inventory'] }> = {},
) {
  return oneImageRunDocument(session, {
    image: { id: image, name: 'a', rootfs: { key: `boot-images/${image}/rootfs`, size: 1, sha256: 'c'.repeat(64) } },
    result: { name: 'r', id: result, prefix: runner.resultPrefix(result) },
    inventory,
    layer: { name: layer, url: cloneUrl, commit: 'a'.repeat(40), playbook },
    keys: runner,
  });
}

/**
 * The document a runner gets for a local run: one image (its rootfs already in the store) through
 * `site.yml` of one layer, with the chroot inventory RenderInventory writes for it; the outcome,
 * the logs and the result (`<name>_cfs_<session>`, id `result-<session>`) named after the session.
 */
export function localRunDocumentFor(session: string, image: { id: string; name: string; rootfs: StoredRootfs }, layer: { name: string; url: string; commit: string }) {
  return oneImageRunDocument(session, {
    image,
    result: { name: `${image.name}_cfs_${session}`, id: `result-${session}`, prefix: `boot-images/result-${session}/` },
    inventory: { all: { children: { cfs_image: { hosts: { [image.id]: {} }, vars: { ansible_connection: 'community.general.chroot', ansible_python_interpreter: '/usr/bin/python3' } } } } },
    layer: { ...layer, playbook: 'site.yml' },
    keys: { outcome: `sessions/${session}/runner-outcome.json`, logsPrefix: `sessions/${session}/logs/` },
  });
}
