import { createHash } from 'node:crypto';
import type { RunDocument } from '../workflow/run-document.ts';

/**
 * The layer cache's keys (issue 19): one per (image, layer), chained over everything that
 * decides what the layer makes of the image: the source rootfs's digest, every earlier layer's
 * key (the parent), the image's ID (its inventory host name, which a play may write into the
 * image: two images of one rootfs in one session are two keys, never one change set made by
 * either), the image's inventory groups (a play for `Compute` runs only there), the
 * runner version (how it unpacks, sandboxes and packs), and the layer's clone URL, commit and
 * playbook with the Ansible options that change results (passthrough argv and limit). Pure: the
 * runner computes them, the control plane and the cache store only carry them.
 */

/** What one layer's key is computed from, in the contract's field order (JSON.stringify keeps it). */
export interface LayerKeyInput {
  parent: string | null;
  source_rootfs_sha256: string;
  /** The image's ID: its host name in the inventory. */
  image_id: string;
  /** The image's inventory groups, sorted. */
  groups: string[];
  runner_version: string;
  clone_url: string;
  commit: string;
  playbook: string;
  /** The ansible passthrough argv, as given. */
  passthrough: string[];
  limit: string;
}

/** The key of one layer: `sha256hex(JSON.stringify({ v: 2, parent, source_rootfs_sha256, image_id, groups, runner_version, clone_url, commit, playbook, passthrough, limit }))`. */
export function layerKey(input: LayerKeyInput): string {
  const canonical = JSON.stringify({
    v: 2,
    parent: input.parent,
    source_rootfs_sha256: input.source_rootfs_sha256,
    image_id: input.image_id,
    groups: [...input.groups].sort(),
    runner_version: input.runner_version,
    clone_url: input.clone_url,
    commit: input.commit,
    playbook: input.playbook,
    passthrough: input.passthrough,
    limit: input.limit,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * The inventory groups an image belongs to, sorted: every group under `all.children` (at any
 * depth) that lists it in its `hosts`, or whose child groups do (Ansible's membership rule).
 */
export function imageGroups(inventory: RunDocument['inventory'], imageId: string): string[] {
  const found = new Set<string>();
  const visit = (children: unknown): boolean => {
    let any = false;
    if (!children || typeof children !== 'object') return false;
    for (const [name, group] of Object.entries(children as Record<string, unknown>)) {
      const body = (group && typeof group === 'object' ? group : {}) as { hosts?: unknown; children?: unknown };
      const direct = !!body.hosts && typeof body.hosts === 'object' && Object.hasOwn(body.hosts, imageId);
      // Every child group is visited (not short-circuited), so each one's own membership is recorded.
      const nested = visit(body.children);
      if (direct || nested) {
        found.add(name);
        any = true;
      }
    }
    return any;
  };
  visit(inventory.all.children);
  return [...found].sort();
}

/** Every layer's key for one image of a run document, in layer order. */
export function imageLayerKeys(document: Pick<RunDocument, 'inventory' | 'layers' | 'ansible'>, image: { image_id: string; rootfs: { sha256: string } }, runnerVersion: string): string[] {
  const groups = imageGroups(document.inventory, image.image_id);
  const keys: string[] = [];
  for (const layer of document.layers) {
    keys.push(
      layerKey({
        parent: keys.at(-1) ?? null,
        source_rootfs_sha256: image.rootfs.sha256,
        image_id: image.image_id,
        groups,
        runner_version: runnerVersion,
        clone_url: layer.clone_url,
        commit: layer.commit,
        playbook: layer.playbook,
        passthrough: document.ansible.passthrough,
        limit: document.ansible.limit,
      }),
    );
  }
  return keys;
}
