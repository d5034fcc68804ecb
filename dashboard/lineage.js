// An image's lineage across generations, from the lineage metadata the runner writes on every
// result image (`cfs_source_image_id`, `cfs_session`): source image -> session -> result images,
// drawn as an SVG graph (each node a link) and given again as nested lists for screen readers.
import { h, imageHref, s, sessionHref } from './dom.js';

const NODE_W = 210;
const NODE_H = 62;
const COL_W = 245;
const ROW_H = 78;

/**
 * The tree holding `id`: from its oldest known ancestor down through every session that used an
 * image as its source. A parent that is no longer registered appears as a missing image.
 */
export function lineageTree(images, id) {
  const byId = new Map(images.map((i) => [i.id, i]));
  const children = new Map();
  for (const image of images) {
    const parent = image.metadata?.cfs_source_image_id;
    if (!parent) continue;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(image);
  }
  let rootId = id;
  const climbed = new Set([id]);
  for (;;) {
    const parent = byId.get(rootId)?.metadata?.cfs_source_image_id;
    if (!parent || climbed.has(parent)) break;
    climbed.add(parent);
    rootId = parent;
  }
  const seen = new Set();
  const imageNode = (imageId) => {
    seen.add(imageId);
    const image = byId.get(imageId);
    const bySession = new Map();
    for (const child of (children.get(imageId) ?? []).sort((a, b) => a.created.localeCompare(b.created))) {
      if (seen.has(child.id)) continue;
      const session = child.metadata?.cfs_session ?? '';
      if (!bySession.has(session)) bySession.set(session, []);
      bySession.get(session).push(child.id);
    }
    return {
      kind: 'image',
      id: imageId,
      label: image?.name ?? '(no longer registered)',
      missing: !image,
      current: imageId === id,
      children: [...bySession].map(([session, ids]) => ({
        kind: 'session',
        id: session,
        label: session || '(unknown session)',
        configuration: byId.get(ids[0])?.metadata?.cfs_configuration,
        children: ids.map(imageNode),
      })),
    };
  };
  return imageNode(rootId);
}

function layout(tree) {
  const nodes = [];
  const edges = [];
  let row = 0;
  const place = (node, depth) => {
    const placed = { node, x: depth * COL_W + 8, y: 0 };
    nodes.push(placed);
    if (node.children.length === 0) placed.y = row++ * ROW_H + 8;
    else {
      const kids = node.children.map((child) => place(child, depth + 1));
      placed.y = (kids[0].y + kids[kids.length - 1].y) / 2;
      for (const kid of kids) edges.push([placed, kid]);
    }
    return placed;
  };
  place(tree, 0);
  const width = Math.max(...nodes.map((n) => n.x)) + NODE_W + 16;
  return { nodes, edges, width, height: Math.max(1, row) * ROW_H + 8 };
}

const clip = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** A label in at most two lines of `max` characters, broken after a `_`, `-` or `.` where one is near the end of the first line. */
function twoLines(text, max) {
  if (text.length <= max) return [text];
  let cut = max;
  for (let i = max; i > max - 10; i -= 1) {
    if ('_-.'.includes(text[i - 1])) {
      cut = i;
      break;
    }
  }
  return [text.slice(0, cut), clip(text.slice(cut), max)];
}

function nodeHref(node) {
  if (node.kind === 'session') return node.id ? sessionHref(node.id) : undefined;
  return imageHref(node.id);
}

function svgNode({ node, x, y }) {
  const kind = node.kind === 'session' ? 'node-session' : 'node-image';
  const second = node.kind === 'session' ? `session${node.configuration ? ` · ${node.configuration}` : ''}` : node.id.slice(0, 8);
  const title = node.kind === 'session' ? `Session ${node.label}` : `Image ${node.label} (${node.id})${node.current ? ', this image' : ''}`;
  const body = [
    s('title', {}, title),
    s('rect', { x, y, width: NODE_W, height: NODE_H, rx: node.kind === 'session' ? 18 : 4 }),
    twoLines(node.label, 26).map((line, i) => s('text', { x: x + 10, y: y + 18 + i * 15, 'font-weight': 600 }, line)),
    s('text', { x: x + 10, y: y + 52 }, clip(second, 29)),
  ];
  const cls = `${kind}${node.current ? ' node-current' : ''}`;
  const href = nodeHref(node);
  const attrs = { class: cls, 'data-kind': node.kind, 'data-id': node.id };
  if (!href) return s('g', attrs, body);
  return s('a', { ...attrs, href, 'aria-label': title, 'aria-current': node.current ? 'page' : undefined }, body);
}

/** The lineage as an SVG graph whose nodes are links (source image -> session -> result images). */
export function lineageSvg(tree) {
  const { nodes, edges, width, height } = layout(tree);
  return s(
    'svg',
    { width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'Lineage graph: source images, the sessions that used them, and their result images', 'data-testid': 'lineage-graph' },
    edges.map(([from, to]) => {
      const x1 = from.x + NODE_W;
      const y1 = from.y + NODE_H / 2;
      const x2 = to.x;
      const y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      return s('path', { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, 'aria-hidden': 'true' });
    }),
    nodes.map(svgNode),
  );
}

/** The same tree as nested lists: the text form of the graph. */
export function lineageList(tree) {
  const item = (node) => {
    const href = nodeHref(node);
    const label = node.kind === 'session' ? `session ${node.label}` : `${node.label} (${node.id})`;
    return h(
      'li',
      {},
      href ? h('a', { href, 'aria-current': node.current ? 'page' : undefined }, label) : label,
      node.current ? ' (this image)' : '',
      node.children.length ? h('ul', {}, node.children.map(item)) : null,
    );
  };
  return h('ul', { class: 'tree' }, item(tree));
}
