// The dashboard's router: hash routes so the server serves one page at `/` and deep links work
// without server-side routing. Each view returns a function that stops its polling. When the
// server asks for an API token, the token form takes the view's place until one is accepted.
import { saveToken, whenUnauthorized } from './api.js';
import { announce, h } from './dom.js';
import { imageListView, imageView } from './images.js';
import { sessionListView } from './sessions.js';
import { sessionView } from './session.js';
import { tokenView } from './token.js';

const routes = [
  { pattern: /^\/sessions\/([^/?]+)$/, nav: 'sessions', view: (m, q) => sessionView(decodeURIComponent(m[1]), q) },
  { pattern: /^\/sessions\/?$/, nav: 'sessions', view: (_m, q) => sessionListView(q) },
  { pattern: /^\/images\/([^/?]+)$/, nav: 'images', view: (m, q) => imageView(decodeURIComponent(m[1]), q) },
  { pattern: /^\/images\/?$/, nav: 'images', view: (_m, q) => imageListView(q) },
];

let stopCurrent = () => {};

function route() {
  const hash = location.hash.replace(/^#/, '') || '/sessions';
  const [path, search = ''] = hash.split('?');
  const query = new URLSearchParams(search);
  const main = document.getElementById('main');
  stopCurrent();
  const match = routes.map((r) => ({ r, m: r.pattern.exec(path) })).find((x) => x.m);
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (match && link.dataset.nav === match.r.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!match) {
    main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/sessions' }, 'See the sessions.')));
    stopCurrent = () => {};
    return;
  }
  const { element, stop, title } = match.r.view(match.m, query);
  main.replaceChildren(element);
  stopCurrent = stop;
  document.title = `${title} · CFS dashboard`;
  announce(`${title} page`);
  // Move focus to the new content on navigation (not on first load, where the skip link comes
  // first) so keyboard and screen-reader users start there.
  if (previousPath && previousPath !== path) main.focus({ preventScroll: false });
  previousPath = path;
}

let previousPath = '';

// A 401 stops the view (its other calls would only be refused too) and asks for the token; once
// given, the view the address names starts again with it.
whenUnauthorized((detail, rejected) => {
  stopCurrent();
  stopCurrent = () => {};
  const main = document.getElementById('main');
  // A view's calls run side by side: the second refusal of the same request for a token changes nothing.
  if (!rejected && main.querySelector('[data-view="token"]')) return;
  const { element, input } = tokenView(detail, rejected, (token) => {
    saveToken(token);
    route();
    main.focus();
  });
  main.replaceChildren(element);
  document.title = 'API token required · CFS dashboard';
  announce(rejected ? 'The API token was refused' : 'API token required');
  input.focus();
});

window.addEventListener('hashchange', route);
route();
