// The sessions list: the CFS v3 filters as a form (kept in the address so a filtered view can be
// linked), refreshed by polling; rows are redrawn only when the answer changed, so focus stays put.
import { getJson, poll, pollInterval } from './api.js';
import { badge, durationBetween, formatDuration, h, sessionHref, sessionState, timeEl } from './dom.js';

const FILTERS = ['status', 'succeeded', 'name_contains', 'min_age', 'max_age', 'tags'];
const PAGE_SIZE = 50;

function field(label, control, hint) {
  return h('label', {}, label, control, hint ? h('span', { class: 'hint' }, hint) : null);
}

function select(name, value, options) {
  return h('select', { name }, options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
}

function filterForm(query) {
  const value = (name) => query.get(name) ?? '';
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter sessions', role: 'search' },
    field('Status', select('status', value('status'), [['', 'Any'], ['pending', 'Pending'], ['running', 'Running'], ['complete', 'Complete']])),
    field('Succeeded', select('succeeded', value('succeeded'), [['', 'Any'], ['true', 'True'], ['false', 'False'], ['none', 'None'], ['unknown', 'Unknown']])),
    field('Name contains', h('input', { name: 'name_contains', type: 'search', value: value('name_contains'), size: 16 })),
    field('Older than', h('input', { name: 'min_age', value: value('min_age'), size: 6, pattern: '\\d+[mhdwMHDW]', 'aria-describedby': 'age-hint' })),
    field('Newer than', h('input', { name: 'max_age', value: value('max_age'), size: 6, pattern: '\\d+[mhdwMHDW]', 'aria-describedby': 'age-hint' })),
    field('Tags', h('input', { name: 'tags', value: value('tags'), size: 18, placeholder: 'key=value,key2=value2' })),
    h('button', { type: 'submit' }, 'Apply'),
    h('button', { type: 'reset', class: 'secondary' }, 'Clear'),
    h('p', { id: 'age-hint', class: 'hint' }, 'Ages are a number and m, h, d or w (30m, 6h, 2d).'),
  );
  const apply = (params) => {
    const next = params.toString();
    location.hash = next ? `#/sessions?${next}` : '#/sessions';
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const v = form.elements[name].value.trim();
      if (v) params.set(name, v);
    }
    apply(params);
  });
  form.addEventListener('reset', (event) => {
    event.preventDefault();
    apply(new URLSearchParams());
  });
  // The two selects apply at once; text fields apply on Enter or Apply.
  for (const name of ['status', 'succeeded']) form.elements[name].addEventListener('change', () => form.requestSubmit());
  return form;
}

function nextAfterId(next) {
  if (!next) return undefined;
  if (typeof next === 'string') return new URLSearchParams(next.includes('?') ? next.split('?')[1] : next).get('after_id') ?? next;
  return next.after_id;
}

function row(session) {
  const state = sessionState(session);
  const { start_time: start, completion_time: end } = session.status.session;
  const tags = Object.entries(session.tags ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
  const images = session.target.groups.flatMap((g) => g.members);
  return h(
    'tr',
    { 'data-session': session.name },
    h('th', { scope: 'row' }, h('a', { href: sessionHref(session.name) }, session.name)),
    h('td', {}, badge(state)),
    h('td', {}, session.configuration.name),
    h('td', {}, String(new Set(images).size)),
    h('td', {}, timeEl(start)),
    h('td', {}, formatDuration(durationBetween(start, end))),
    h('td', {}, tags),
  );
}

/** `#/sessions?status=&succeeded=&name_contains=&min_age=&max_age=&tags=&after_id=`. */
export function sessionListView(query) {
  const tbody = h('tbody');
  const updated = h('p', { class: 'updated' }, 'Loading…');
  const pager = h('div', { class: 'pager' });
  const table = h(
    'table',
    { 'aria-describedby': 'sessions-updated' },
    h('caption', { class: 'visually-hidden' }, 'Sessions on this page (pages go in name order), newest first'),
    h('thead', {}, h('tr', {}, ['Name', 'State', 'Configuration', 'Images', 'Started', 'Duration', 'Tags'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody,
  );
  updated.id = 'sessions-updated';
  const element = h('section', { 'aria-labelledby': 'sessions-title' }, h('h1', { id: 'sessions-title' }, 'Sessions'), filterForm(query), updated, table, pager);

  const params = new URLSearchParams();
  for (const name of [...FILTERS, 'after_id']) if (query.get(name)) params.set(name, query.get(name));
  params.set('limit', String(PAGE_SIZE));
  let last = '';
  const stop = poll(async (signal) => {
    let body;
    try {
      body = await getJson(`/apis/cfs/v3/sessions?${params}`, signal);
    } catch (error) {
      if (signal.aborted) return false;
      updated.replaceChildren(h('span', { class: 'error' }, `Could not list sessions: ${error.message}`));
      return true;
    }
    const sessions = [...body.sessions].sort((a, b) => (b.status.session.start_time ?? '').localeCompare(a.status.session.start_time ?? ''));
    const text = JSON.stringify(sessions);
    if (text !== last) {
      last = text;
      tbody.replaceChildren(...(sessions.length ? sessions.map(row) : [h('tr', {}, h('td', { colspan: 7 }, 'No sessions match.'))]));
      const after = nextAfterId(body.next);
      const more = new URLSearchParams(query);
      if (after) more.set('after_id', after);
      pager.replaceChildren(
        query.get('after_id') ? h('a', { href: `#/sessions?${withoutAfter(query)}` }, 'First page') : null,
        after ? h('a', { href: `#/sessions?${more}` }, 'Next page') : null,
      );
    }
    // Durations of running sessions move on even when nothing else changed.
    for (const tr of tbody.querySelectorAll('tr[data-session]')) {
      const session = sessions.find((x) => x.name === tr.dataset.session);
      if (session && session.status.session.status !== 'complete') tr.children[5].textContent = formatDuration(durationBetween(session.status.session.start_time));
    }
    updated.textContent = `${sessions.length} session${sessions.length === 1 ? '' : 's'}, updated ${new Date().toLocaleTimeString()}`;
    return true;
  }, pollInterval(2000));
  return { element, stop, title: 'Sessions' };
}

function withoutAfter(query) {
  const params = new URLSearchParams(query);
  params.delete('after_id');
  return params;
}
