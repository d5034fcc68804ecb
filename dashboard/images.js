// Images: the registry's list, and one image with its lineage graph, manifest and checksums,
// and the automations that built it or skipped it.
import { ApiError, getJson, listAutomations, listImages, poll, pollInterval } from './api.js';
import { badge, h, imageHref, sessionHref, timeEl } from './dom.js';
import { lineageList, lineageSvg, lineageTree } from './lineage.js';

function sessionLink(name) {
  return name ? h('a', { href: sessionHref(name) }, name) : '';
}

function imageRow(image, names) {
  const source = image.metadata?.cfs_source_image_id;
  return h(
    'tr',
    { 'data-image': image.id },
    h('th', { scope: 'row' }, h('a', { href: imageHref(image.id) }, image.name)),
    h('td', {}, h('code', {}, image.id)),
    h('td', {}, timeEl(image.created)),
    h('td', {}, image.arch),
    h('td', {}, image.link ? 'yes' : 'no'),
    h('td', {}, source ? h('a', { href: imageHref(source) }, names.get(source) ?? source) : ''),
    h('td', {}, sessionLink(image.metadata?.cfs_session)),
  );
}

/** `#/images?name=`: every image, newest first, filtered by name as you type. */
export function imageListView(query) {
  const input = h('input', { type: 'search', id: 'image-filter', value: query.get('name') ?? '' });
  const tbody = h('tbody');
  const updated = h('p', { class: 'updated' }, 'Loading…');
  let images = [];
  const draw = () => {
    const needle = input.value.trim().toLowerCase();
    const names = new Map(images.map((i) => [i.id, i.name]));
    const shown = images.filter((i) => !needle || i.name.toLowerCase().includes(needle));
    tbody.replaceChildren(...(shown.length ? shown.map((i) => imageRow(i, names)) : [h('tr', {}, h('td', { colspan: 7 }, 'No images match.'))]));
    updated.textContent = `${shown.length} of ${images.length} image${images.length === 1 ? '' : 's'}, updated ${new Date().toLocaleTimeString()}`;
  };
  input.addEventListener('input', draw);
  const element = h(
    'section',
    { 'aria-labelledby': 'images-title' },
    h('h1', { id: 'images-title' }, 'Images'),
    h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter images', onsubmit: (e) => e.preventDefault() }, h('label', { for: 'image-filter' }, 'Name contains', input)),
    updated,
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, 'Images, newest first'),
      h('thead', {}, h('tr', {}, ['Name', 'ID', 'Created', 'Arch', 'Rootfs', 'Source image', 'Built by session'].map((t) => h('th', { scope: 'col' }, t)))),
      tbody,
    ),
  );
  let last = '';
  const stop = poll(async (signal) => {
    const list = await listImages(signal);
    const text = JSON.stringify(list);
    if (text !== last) {
      last = text;
      images = [...list].sort((a, b) => b.created.localeCompare(a.created));
      draw();
    }
    return true;
  }, pollInterval(5000));
  return { element, stop, title: 'Images' };
}

function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]} (${n.toLocaleString()} bytes)`;
}

function factsSection(image, byId) {
  const m = image.metadata ?? {};
  const source = m.cfs_source_image_id;
  let layers = [];
  try {
    layers = m.cfs_layers ? JSON.parse(m.cfs_layers) : [];
  } catch {
    layers = [];
  }
  const rows = [
    ['ID', h('code', {}, image.id)],
    ['Created', timeEl(image.created)],
    ['Arch', image.arch],
    ['Manifest', image.link ? h('code', {}, image.link.path) : 'none yet (no rootfs registered)'],
    source ? ['Source image', h('a', { href: imageHref(source) }, byId.get(source)?.name ?? source)] : null,
    m.cfs_session ? ['Built by session', sessionLink(m.cfs_session)] : null,
    m.cfs_configuration ? ['Configuration', m.cfs_configuration] : null,
    layers.length ? ['Layers', h('ol', {}, layers.map((l) => h('li', {}, `${l.name ?? ''} `, l.commit ? h('code', {}, String(l.commit).slice(0, 12)) : '', l.playbook ? ` ${l.playbook}` : '')))] : null,
    m.cfs_fingerprint ? ['Input fingerprint', h('code', {}, m.cfs_fingerprint)] : null,
    m.cfs_automation ? ['Automation', m.cfs_automation] : null,
  ].filter(Boolean);
  const other = Object.entries(m).filter(([k]) => !['cfs_source_image_id', 'cfs_session', 'cfs_configuration', 'cfs_layers', 'cfs_fingerprint', 'cfs_automation'].includes(k));
  return h(
    'section',
    { 'aria-labelledby': 'facts-title' },
    h('h2', { id: 'facts-title', class: 'visually-hidden' }, 'Details'),
    h('dl', { class: 'facts' }, rows.map(([t, v]) => [h('dt', {}, t), h('dd', {}, v)]), other.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
  );
}

function lineageSection(image, images) {
  const tree = lineageTree(images, image.id);
  return h(
    'section',
    { id: 'lineage', 'aria-labelledby': 'lineage-title', tabindex: '-1' },
    h('h2', { id: 'lineage-title' }, 'Lineage'),
    h('p', { class: 'hint' }, 'Source image → session → result images, across generations. Every box is a link; this image is outlined.'),
    h('div', { class: 'lineage' }, lineageSvg(tree)),
    h('details', {}, h('summary', {}, 'Lineage as a list'), lineageList(tree)),
  );
}

async function manifestSection(image, signal) {
  const section = h('section', { 'aria-labelledby': 'manifest-title' }, h('h2', { id: 'manifest-title' }, 'Manifest and checksums'));
  if (!image.link) {
    section.append(h('p', {}, 'This image has no manifest yet.'));
    return section;
  }
  let manifest;
  try {
    manifest = await getJson(`/apis/ims/v3/images/${encodeURIComponent(image.id)}/manifest`, signal);
  } catch (error) {
    section.append(h('p', { class: 'error' }, `Could not read the manifest: ${error.message}`));
    return section;
  }
  section.append(
    h('p', {}, 'Created ', timeEl(manifest.created), `, manifest version ${manifest.version}.`),
    h(
      'table',
      { class: 'manifest' },
      h('caption', { class: 'visually-hidden' }, 'Artifacts with their sizes and checksums'),
      h('thead', {}, h('tr', {}, ['Type', 'Path', 'Size', 'MD5', 'SHA-256'].map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        manifest.artifacts.map((a) =>
          h('tr', { 'data-type': a.type }, h('th', { scope: 'row' }, a.type), h('td', {}, h('code', {}, a.link?.path ?? '')), h('td', {}, formatBytes(a.size)), h('td', {}, h('code', {}, a.md5)), h('td', {}, h('code', {}, a.sha256))),
        ),
      ),
    ),
  );
  return section;
}

async function automationsSection(image, signal) {
  const section = h('section', { 'aria-labelledby': 'automations-title' }, h('h2', { id: 'automations-title' }, 'Automations'));
  let automations;
  try {
    automations = await listAutomations(signal);
  } catch (error) {
    section.append(h('p', { class: 'error' }, `Could not read the automations: ${error.message}`));
    return section;
  }
  if (automations === undefined) {
    section.append(h('p', {}, 'This server has no automations API.'));
    return section;
  }
  const built = image.metadata?.cfs_session;
  const fingerprint = image.metadata?.cfs_fingerprint;
  // A run or skip concerns this image when it built it, took it as its source, or skipped because this image already carries its inputs' fingerprint.
  const relation = (e) => {
    if (built && e.session === built) return 'built this image';
    if (e.source_image_id === image.id) return 'took this image as its source';
    if (fingerprint && e.fingerprint === fingerprint && e.outcome === 'skipped') return 'found its inputs already built here';
    return undefined;
  };
  const entries = automations.flatMap((a) => (a.history ?? []).filter(relation).map((e) => ({ automation: a.name, relation: relation(e), ...e })));
  if (entries.length === 0) {
    section.append(h('p', {}, image.metadata?.cfs_automation ? `Built by automation ${image.metadata.cfs_automation}; its history no longer lists this build.` : 'No automation built this image or skipped it.'));
    return section;
  }
  section.append(
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, 'Automation runs and skips concerning this image'),
      h('thead', {}, h('tr', {}, ['Automation', 'When', 'Trigger', 'Outcome', 'Relation', 'Session', 'Reason'].map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        {},
        entries.map((e) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, e.automation),
            h('td', {}, timeEl(e.time), e.repeated > 1 ? ` (×${e.repeated}, last `: '', e.repeated > 1 ? timeEl(e.last_time) : '', e.repeated > 1 ? ')' : ''),
            h('td', {}, e.trigger),
            h('td', {}, badge(e.outcome)),
            h('td', {}, e.relation),
            h('td', {}, sessionLink(e.session)),
            h('td', {}, e.reason),
          ),
        ),
      ),
    ),
  );
  return section;
}

/** `#/images/<id>?section=lineage`. */
export function imageView(id, query) {
  const controller = new AbortController();
  const body = h('div', {}, h('p', { class: 'updated' }, 'Loading…'));
  const heading = h('h1', { id: 'image-title' }, 'Image');
  const element = h('article', { 'aria-labelledby': 'image-title', 'data-image': id }, h('p', {}, h('a', { href: '#/images' }, '← All images')), heading, body);
  (async () => {
    const { signal } = controller;
    try {
      const [image, images] = await Promise.all([getJson(`/apis/ims/v3/images/${encodeURIComponent(id)}`, signal), listImages(signal)]);
      heading.replaceChildren('Image ', h('span', { class: 'name' }, image.name));
      document.title = `Image ${image.name} · CFS dashboard`;
      const byId = new Map(images.map((i) => [i.id, i]));
      const [manifest, automations] = await Promise.all([manifestSection(image, signal), automationsSection(image, signal)]);
      body.replaceChildren(factsSection(image, byId), lineageSection(image, images), manifest, automations);
      element.dataset.loaded = 'true';
      if (query.get('section') === 'lineage') document.getElementById('lineage')?.focus();
    } catch (error) {
      if (signal.aborted) return;
      body.replaceChildren(h('p', { class: 'error' }, error instanceof ApiError && error.status === 404 ? `No image with id ${id}.` : `Could not read the image: ${error.message}`));
    }
  })();
  return { element, stop: () => controller.abort(), title: `Image ${id}` };
}
