// The sfbridge dashboard: a one-page app with hash routes
//   #/overview  #/mappings  #/mappings/new  #/mappings/OBJECT/edit
//   #/explorer  #/explorer/OBJECT  #/explorer/OBJECT/ID  #/errors
// Every page is a module with mount(main, params, ctx) -> {refresh(status), unmount()}.
// The shell polls the connection's status every 2 s (header badge, notifications banner)
// and hands it to the page's refresh, so a page keeps its controls and only updates data.
import { h, replace, clear, get, post, paths, badge, stateKind, notice, ApiError, enc } from './lib.js';
import * as overview from './overview.js';
import * as mappings from './mappings.js';
import * as editor from './editor.js';
import * as explorer from './explorer.js';
import * as errors from './errors.js';

const REFRESH_MS = 2000;

const routes = [
  [/^\/?$/, overview, () => ({})],
  [/^\/overview$/, overview, () => ({})],
  [/^\/mappings$/, mappings, () => ({})],
  [/^\/mappings\/new$/, editor, () => ({ object: null })],
  [/^\/mappings\/([^/]+)\/edit$/, editor, (m) => ({ object: m[1] })],
  [/^\/explorer$/, explorer, () => ({ object: null })],
  [/^\/explorer\/([^/]+)$/, explorer, (m) => ({ object: m[1] })],
  [/^\/explorer\/([^/]+)\/([^/]+)$/, explorer, (m) => ({ object: m[1], id: m[2] })],
  [/^\/errors$/, errors, () => ({})],
];

const main = document.getElementById('main');
const bannerArea = document.getElementById('banner');
const connBadge = document.getElementById('conn-badge');

let current = null; // {page, ctx}
let status = null; // the last status document
let statusError = null;
let flashMsg = null;
let timer = null;
let refreshing = false;
let navigations = 0;

function parseHash() {
  const raw = decodeURIComponent(location.hash.replace(/^#/, '') || '/');
  const path = raw.split('?')[0];
  for (const [re, page, params] of routes) {
    const m = path.match(re);
    if (m) return { page, params: params(m.map((x) => x)), path };
  }
  return { page: null, params: {}, path };
}

function markNav(path) {
  const section = (path.split('/')[1] || 'overview').toLowerCase();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// Messages carried across a navigation (e.g. "Mapping created" after Save).
function flash(kind, text) {
  flashMsg = { kind, text };
}

function takeFlash() {
  const f = flashMsg;
  flashMsg = null;
  return f ? notice(f.kind, f.text) : null;
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  navigations++;
  if (current && current.handle && current.handle.unmount) current.handle.unmount();
  current = null;
  const { page, params, path } = parseHash();
  markNav(path);
  clear(main);
  if (!page) {
    document.title = 'Not found · sfbridge';
    replace(main, h('h1', 'Not found'), h('p', 'No such page. ', h('a', { href: '#/overview' }, 'Go to the overview'), '.'));
    return;
  }
  const gen = navigations;
  const ctx = {
    alive: () => gen === navigations,
    navigate,
    flash,
    takeFlash,
    status: () => status,
    setTitle: (t) => {
      document.title = t + ' · sfbridge';
    },
    refreshNow: () => tick(true),
  };
  const handle = page.mount(main, params, ctx);
  current = { page, ctx, handle };
  if (navigations > 1) main.focus({ preventScroll: false });
  await tick(true);
}

async function loadStatus() {
  try {
    status = await get(paths.conn);
    statusError = null;
  } catch (e) {
    statusError = e;
  }
  renderShell();
  try {
    const n = await get(paths.conn + '/notifications');
    renderBanner(n && Array.isArray(n.results) ? n.results : []);
  } catch (e) {
    // the banner keeps what it showed
  }
}

function renderShell() {
  if (statusError) {
    replace(connBadge, badge(statusError.status === 401 ? 'unauthorized' : 'unreachable', 'bad'));
    return;
  }
  const c = status || {};
  const health = (c.health && c.health.status) || 'unknown';
  replace(
    connBadge,
    h('span.sr-only', 'Connection: '),
    badge(c.state || (c.connection && c.connection.state) || 'unknown'),
    h('span.sr-only', ', health: '),
    badge(health, stateKind(health)),
  );
}

// The notifications banner: every unacknowledged notification, each with Acknowledge,
// and "Acknowledge all". Kept as is while a button in it has the focus.
let bannerSig = '';
function renderBanner(list) {
  const sig = JSON.stringify(list.map((n) => n.id));
  if (sig === bannerSig) return;
  if (bannerArea.contains(document.activeElement) && list.length) return;
  bannerSig = sig;
  if (!list.length) {
    clear(bannerArea);
    return;
  }
  const shown = list.slice(0, 5);
  const level = list.some((n) => n.level === 'error') ? 'error' : 'warn';
  replace(
    bannerArea,
    h(
      'section.banner',
      { class: 'banner-' + level, 'aria-label': 'Notifications' },
      h(
        'div.banner-head',
        h('h2', `${list.length} notification${list.length === 1 ? '' : 's'}`),
        h('button.btn.btn-small', { type: 'button', on: { click: () => ack('all') } }, 'Acknowledge all'),
      ),
      h(
        'ul.banner-list',
        shown.map((n) =>
          h(
            'li',
            { dataset: { notification: String(n.id) } },
            h('span.badge', { class: 'badge-' + (n.level === 'error' ? 'bad' : n.level === 'warn' ? 'warn' : 'info') }, n.level || 'info'),
            h('span.banner-msg', n.object_name ? n.object_name + ': ' : '', n.message || n.kind || ''),
            h('button.btn.btn-small.btn-quiet', { type: 'button', 'aria-label': 'Acknowledge: ' + (n.message || n.kind), on: { click: () => ack(n.id) } }, 'Acknowledge'),
          ),
        ),
        list.length > shown.length ? h('li.muted', `and ${list.length - shown.length} more`) : null,
      ),
    ),
  );
}

async function ack(id) {
  try {
    await post(`/api/v3/notifications/${enc(String(id))}/actions/acknowledge`);
  } catch (e) {
    bannerArea.prepend(notice('error', e.message));
    return;
  }
  bannerSig = '';
  bannerArea.blur();
  if (bannerArea.contains(document.activeElement)) main.focus();
  await loadStatus();
}

async function tick(now) {
  if (refreshing && !now) return;
  refreshing = true;
  try {
    await loadStatus();
    const cur = current;
    if (cur && cur.handle && cur.handle.refresh && cur.ctx.alive()) {
      try {
        await cur.handle.refresh(status);
      } catch (e) {
        if (!(e instanceof ApiError)) console.error(e);
      }
    }
  } finally {
    refreshing = false;
  }
}

function start() {
  window.addEventListener('hashchange', route);
  route();
  timer = setInterval(() => {
    if (!document.hidden) tick(false);
  }, REFRESH_MS);
}

start();
export { timer };
