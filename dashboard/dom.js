// Small DOM and formatting helpers: elements are built with text nodes only (never innerHTML), so
// names and logs from the API cannot inject markup.

/** Builds an element: `h('a', { href: '#/x' }, 'text', child)`; `style` takes an object. `null`/`false` children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    // Through the CSSOM: the page's content security policy refuses inline style attributes.
    else if (name === 'style') Object.assign(el.style, value);
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined && value !== null) el.setAttribute(name, String(value));
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A status badge whose class colours it and whose text says it (colour is never the only cue). */
export function badge(text, kind = text) {
  return h('span', { class: `badge ${kind}` }, text);
}

/** `1.2 s`, `3 min 4 s`, `2 h 5 min`. */
export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const total = Math.round(ms / 1000);
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min ${total % 60} s`;
  return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
}

/** The time between two ISO instants (to now while the second is missing). */
export function durationBetween(start, end) {
  if (!start) return NaN;
  return (end ? Date.parse(end) : Date.now()) - Date.parse(start);
}

/** An ISO time as a `<time>` element showing the local time. */
export function timeEl(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return h('time', { datetime: iso, title: iso }, date.toLocaleString());
}

/** A session's state as one word: pending, running, succeeded or failed. */
export function sessionState(session) {
  const { status, succeeded } = session.status.session;
  if (status !== 'complete') return status;
  return succeeded === 'true' ? 'succeeded' : 'failed';
}

/** Replaces the view's content and says so to screen readers. */
export function announce(text) {
  const el = document.getElementById('announcer');
  if (el) el.textContent = text;
}

export const imageHref = (id) => `#/images/${encodeURIComponent(id)}`;
export const sessionHref = (name) => `#/sessions/${encodeURIComponent(name)}`;
