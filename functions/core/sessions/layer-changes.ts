import { NotFoundError, ValidationError } from '../errors.ts';
import { LayerCache, type LayerChanges } from '../layer-cache/layer-cache.ts';
import type { SessionRecord } from '../model/session.ts';
import type { AppPorts } from '../../ports/index.ts';

/**
 * What one layer of a session changed in one image (issue 19): the changes report the runner
 * recorded under the layer's cache key (`layer-cache/changes/<key>.json`), found through the keys
 * the session keeps in `status.layer_keys`. Every "not there" is a 404 that says why: no such
 * session, layer or image, or no report (the layer failed or did not run, the cache was off, the
 * run has not got there yet, or the report is gone from the cache).
 */

export type LayerChangesPorts = Pick<AppPorts, 'sessions' | 'artifacts'>;

/** A 404 with its own sentence (NotFoundError's default names only a kind and an id). */
function notFound(kind: string, id: string, detail: string): NotFoundError {
  const error = new NotFoundError(kind, id);
  error.message = detail;
  return error;
}

/** The session's source images, in the order its groups name them. */
function sessionImageIds(session: SessionRecord): string[] {
  return [...new Set(session.target.groups.flatMap((g) => g.members))];
}

function parseLayerIndex(text: string): number {
  if (!/^\d{1,6}$/.test(text)) throw new ValidationError(`layer: '${text}' is not a layer index (0 for the first layer)`, 'layer');
  return Number(text);
}

/** Why a layer has no report, from what the session says of it (the runner names a key for a layer that failed too). */
function whyNoReport(session: SessionRecord, index: number, imageId: string, key: string | undefined): string {
  const layer = session.status.layers[index]!;
  const what = `layer ${index} (${layer.name}) of session '${session.name}' on image ${imageId}`;
  const step = session.status.steps?.find((s) => s.name === 'ansible' && s.layer === layer.name && s.image_id === undefined);
  if (step?.state === 'failed') return `${what} failed: a failed layer records no changes`;
  if (step?.state === 'skipped') return `${what} was skipped: it never ran, so it changed nothing`;
  if (key) {
    return `no changes report is kept for layer ${index} of session '${session.name}' on image ${imageId} (key ${key}): the layer cache evicted it, or the layer ended before its report was written`;
  }
  const { status } = session.status.session;
  if (status !== 'complete' && !session.status.failure) return `${what} has no changes recorded yet: the session is ${status}; they are recorded when its run ends`;
  if (!session.status.layer_keys) {
    return `no changes were recorded for session '${session.name}': the layer cache was off when it ran (setting layer_cache), or its run ended before recording any`;
  }
  if (session.status.failure) return `${what} recorded no changes: the run stopped before it (${session.status.failure.reason})`;
  return `${what} recorded no changes`;
}

/**
 * The changes report of layer `layer` (its index, from 0, as in the log names) of `name` on
 * `imageId`; the image may be left out when the session has one. A session with several images
 * and none named is a 400 listing them.
 */
export async function layerChanges(ports: LayerChangesPorts, name: string, layer: string, imageId: string | undefined): Promise<LayerChanges> {
  const index = parseLayerIndex(layer);
  const session = await ports.sessions.get(name);
  if (!session) throw new NotFoundError('session', name);
  const count = session.status.layers.length;
  if (index >= count) throw notFound('layer', String(index), `session '${name}' has no layer ${index}: its layers are 0 to ${count - 1}`);
  const images = sessionImageIds(session);
  if (imageId === undefined) {
    if (images.length !== 1) throw new ValidationError(`image_id: session '${name}' has ${images.length} images (${images.join(', ')}); name one with ?image_id=`, 'image_id');
    imageId = images[0]!;
  }
  if (!images.includes(imageId)) throw notFound('image', imageId, `image ${imageId} is not one of session '${name}''s images (${images.join(', ')})`);

  const key = session.status.layer_keys?.[imageId]?.[index];
  const report = key ? await new LayerCache(ports.artifacts).changes(key) : undefined;
  if (!report) throw notFound('changes', key ?? `${name}/${index}`, whyNoReport(session, index, imageId, key));
  return report;
}
