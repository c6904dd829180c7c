// Shared helpers of the dashboard: building DOM nodes (never from HTML strings),
// calling the management API, formatting values.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h('tag.class', {attr: value, on: {click: fn}}, child, ...): an element.
// Strings become text nodes; null/false children are skipped; arrays are flattened.
export function h(spec, attrs, ...children) {
  return build(document.createElement.bind(document), spec, attrs, children);
}

export function svg(spec, attrs, ...children) {
  return build((t) => document.createElementNS(SVG_NS, t), spec, attrs, children);
}

function build(make, spec, attrs, children) {
  const [tag, ...classes] = spec.split('.');
  const el = make(tag || 'div');
  if (classes.length) el.setAttribute('class', classes.join(' '));
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === 'class') {
      el.setAttribute('class', [el.getAttribute('class'), v].filter(Boolean).join(' '));
    } else if (k === 'text') {
      el.textContent = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

// ---- the API ----------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const CONN = '/api/v3/connections/default';
export const paths = { conn: CONN };

// fetch JSON; throws ApiError with the server's message (shown verbatim by the pages).
export async function api(method, path, body) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body === undefined ? {} : body);
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'NETWORK', 'sfbridge cannot be reached (' + e.message + ')');
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = null;
    }
  }
  if (!resp.ok) {
    const msg = data && typeof data.message === 'string' ? data.message : `${resp.status} ${resp.statusText}`;
    throw new ApiError(resp.status, data && data.error ? data.error : 'HTTP_' + resp.status, msg);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;

// ---- formatting -------------------------------------------------------------------

export function num(n) {
  if (n === null || n === undefined || n === '') return '—';
  const v = Number(n);
  return Number.isFinite(v) ? v.toLocaleString('en-US') : String(n);
}

export function duration(sec) {
  if (sec === null || sec === undefined) return '—';
  sec = Math.max(0, Math.round(Number(sec)));
  if (sec < 60) return sec + ' s';
  if (sec < 3600) return Math.floor(sec / 60) + ' min' + (sec % 60 ? ' ' + (sec % 60) + ' s' : '');
  if (sec < 86400) return Math.floor(sec / 3600) + ' h' + (sec % 3600 >= 60 ? ' ' + Math.floor((sec % 3600) / 60) + ' min' : '');
  return Math.floor(sec / 86400) + ' d ' + Math.floor((sec % 86400) / 3600) + ' h';
}

export function ago(ts) {
  if (!ts) return '—';
  const t = Date.parse(ts);
  if (!Number.isFinite(t)) return String(ts);
  const s = (Date.now() - t) / 1000;
  if (s < 0) return 'in ' + duration(-s);
  if (s < 5) return 'just now';
  return duration(s) + ' ago';
}

export function time(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function timeEl(ts, relative) {
  if (!ts) return '—';
  return h('time', { datetime: ts, title: time(ts) }, relative ? ago(ts) : time(ts));
}

// A state such as DATA_SYNCED as a badge; kind picks its colour.
export function badge(text, kind) {
  return h('span.badge', { class: 'badge-' + (kind || stateKind(text)) }, String(text || '—').replace(/_/g, ' '));
}

export function stateKind(s) {
  s = String(s || '').toUpperCase();
  if (/^(DATA_SYNCED|CONNECTED|IDLE|HEALTHY|OK|SUCCESS|SYNCED|RUNNING|STREAMING)$/.test(s)) return 'ok';
  if (/(FAILED|ERROR|DOWN|BAD|NEED_AUTH|OFFLINE)/.test(s)) return 'bad';
  if (/(PAUSED|FALLBACK|RETRYING|DEGRADED|WARN|PENDING|NEW)/.test(s)) return 'warn';
  return 'info';
}

// A row-keyed table body that keeps rows (and the focus inside them) across refreshes:
// a row is rebuilt only when its data changed and nothing in it has the focus.
export function syncRows(tbody, items, keyOf, render, sigOf = (x) => JSON.stringify(x)) {
  const old = new Map();
  for (const tr of Array.from(tbody.children)) if (tr.dataset.key !== undefined) old.set(tr.dataset.key, tr);
  let prev = null;
  for (const item of items) {
    const key = String(keyOf(item));
    const sig = sigOf(item);
    let tr = old.get(key);
    if (tr) {
      old.delete(key);
      if (tr.dataset.sig !== sig) {
        const fresh = render(item);
        fresh.dataset.key = key;
        fresh.dataset.sig = sig;
        const focusAt = tr.contains(document.activeElement) ? focusIndex(tr, document.activeElement) : -1;
        tr.replaceWith(fresh);
        if (focusAt >= 0) refocus(fresh, focusAt);
        tr = fresh;
      }
    } else {
      tr = render(item);
      tr.dataset.key = key;
      tr.dataset.sig = sig;
    }
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== tr) tbody.insertBefore(tr, want);
    prev = tr;
  }
  for (const tr of old.values()) tr.remove();
  for (const tr of Array.from(tbody.children)) if (tr.dataset.key === undefined) tr.remove();
}

const FOCUSABLE = 'a[href], button, input, select, textarea, [tabindex]';

function focusIndex(row, el) {
  return Array.from(row.querySelectorAll(FOCUSABLE)).indexOf(el);
}

// The focus goes to the control at the same place in the rebuilt row (e.g. from Pause
// to the Resume that replaced it), so a refresh never drops a keyboard user's place.
function refocus(row, i) {
  const all = row.querySelectorAll(FOCUSABLE);
  const el = all[Math.min(i, all.length - 1)];
  if (el) el.focus({ preventScroll: true });
}

// An empty-table row spanning every column.
export function emptyRow(tbody, cols, text) {
  replace(tbody, h('tr.empty', h('td', { colspan: cols }, text)));
}

// A message box: kind 'error' (role alert), 'ok' or 'warn' (role status).
export function notice(kind, text) {
  return h('div.notice', { class: 'notice-' + kind, role: kind === 'error' ? 'alert' : 'status' }, text);
}

export function pageHeader(title, ...actions) {
  return h('div.page-head', h('h1', title), actions.length ? h('div.actions', actions) : null);
}

// A <table> in a horizontally scrolling region (a focusable, labelled region so
// keyboard users can scroll it too).
export function tableBox(label, table) {
  return h('div.table-wrap', { role: 'region', 'aria-label': label, tabindex: '0' }, table);
}

export function th(text, attrs) {
  return h('th', Object.assign({ scope: 'col' }, attrs || {}), text);
}
