// Explorer: browse a mapped table (keyset pages, sort, filter, search) and a record's
// detail with its trigger-log history. The page of rows refreshes twice a second, so a
// change shows within a second; a page that takes long to answer (a sort on a column
// without an index over a big table) is asked for less often, never more than a quarter
// of the time.
import { h, replace, clear, get, paths, badge, num, time, pageHeader, notice, syncRows, emptyRow, tableBox, th, qs, enc } from './lib.js';

const RECORDS_MS = 500;
const PAGE_SIZES = [10, 25, 50, 100, 200, 500];
// Columns shown first, in this order, when the table has them.
const FIRST = ['id', 'sfid', 'name', '_hc_lastop', '_hc_err'];

// What the user chose, per table, kept across navigations within the session.
const memory = new Map();

export function mount(main, params, ctx) {
  if (params.object && params.id) return mountRecord(main, params, ctx);
  return mountTable(main, params, ctx);
}

function mapsOf(st) {
  return st && Array.isArray(st.mappings) ? st.mappings : [];
}

function tablePicker(ctx, current) {
  const sel = h('select', { id: 'explorer-table' });
  const fill = (maps) => {
    const keep = current || sel.value;
    clear(sel);
    if (!current) sel.append(h('option', { value: '' }, 'Choose a table…'));
    for (const m of maps) sel.append(h('option', { value: m.object_name, selected: m.object_name === keep }, `${m.object_name} (${m.table_name})`));
  };
  sel.addEventListener('change', () => {
    if (sel.value) ctx.navigate('#/explorer/' + enc(sel.value));
  });
  fill(mapsOf(ctx.status()));
  return { el: h('div.field.inline', h('label', { for: 'explorer-table' }, 'Table'), sel), fill, sel };
}

// ---- the table ---------------------------------------------------------------------
function mountTable(main, params, ctx) {
  const obj = params.object;
  ctx.setTitle(obj ? `Explorer: ${obj}` : 'Explorer');
  const picker = tablePicker(ctx, obj);
  if (!obj) {
    const list = h('ul.link-list');
    replace(main, pageHeader('Explorer'), h('p', 'Browse the rows sfbridge keeps in Postgres. Choose a mapped table:'), picker.el, list);
    let sig = '';
    const refresh = (st) => {
      const maps = mapsOf(st);
      const s = JSON.stringify(maps.map((m) => [m.object_name, m.rows]));
      if (s === sig) return;
      sig = s;
      if (!picker.el.contains(document.activeElement)) picker.fill(maps);
      replace(list, maps.length ? maps.map((m) => h('li', h('a', { href: '#/explorer/' + enc(m.object_name) }, m.object_name), h('span.muted', ` ${m.table_name}, ${num(m.rows)} rows`))) : h('li.muted', 'No mapped tables yet.'));
    };
    return { refresh };
  }

  const state = memory.get(obj) || { limit: 50, sort: 'id', dir: 'asc', field: '', value: '', q: '' };
  memory.set(obj, state);
  let cursors = [null]; // cursors[i]: the `after` of page i
  let page = 0;
  let next = null;
  let columns = [];
  let seq = 0;

  const msg = h('div.msgs', { 'aria-live': 'polite' });
  const search = h('input', { type: 'search', id: 'records-search', value: state.q, placeholder: 'sfid or text', autocomplete: 'off' });
  const fieldSel = h('select', { id: 'filter-field' }, h('option', { value: '' }, 'any field'));
  const valueIn = h('input', { type: 'text', id: 'filter-value', value: state.value, autocomplete: 'off' });
  const sizeSel = h('select', { id: 'page-size' }, PAGE_SIZES.map((n) => h('option', { value: String(n), selected: n === state.limit }, String(n))));
  const count = h('p.muted.count', { id: 'records-count', 'aria-live': 'polite' });
  const prevBtn = h('button.btn', { type: 'button', id: 'prev-page', disabled: true }, '‹ Previous');
  const nextBtn = h('button.btn', { type: 'button', id: 'next-page', disabled: true }, 'Next ›');
  const pageLabel = h('span.muted', { id: 'page-label' });
  const thead = h('thead');
  const tbody = h('tbody');
  const table = h('table.data.records', { id: 'records-table' }, h('caption.sr-only', `Rows of ${obj}`), thead, tbody);

  const form = h(
    'form.toolbar',
    { role: 'search', 'aria-label': `Search ${obj}` },
    h('div.field', h('label', { for: 'records-search' }, 'Search'), search),
    h('div.field', h('label', { for: 'filter-field' }, 'Filter field'), fieldSel),
    h('div.field', h('label', { for: 'filter-value' }, 'equals'), valueIn),
    h('div.field', h('label', { for: 'page-size' }, 'Page size'), sizeSel),
    h('div.field.field-btn', h('button.btn.btn-primary', { type: 'submit', id: 'apply-filter' }, 'Apply'), h('button.btn', { type: 'button', id: 'clear-filter', on: { click: clearFilter } }, 'Clear')),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.q = search.value.trim();
    state.field = fieldSel.value;
    state.value = valueIn.value;
    state.limit = Number(sizeSel.value);
    restart();
  });
  sizeSel.addEventListener('change', () => {
    state.limit = Number(sizeSel.value);
    restart();
  });
  function clearFilter() {
    search.value = '';
    valueIn.value = '';
    fieldSel.value = '';
    state.q = state.value = state.field = '';
    restart();
  }
  prevBtn.addEventListener('click', () => {
    if (page > 0) {
      page--;
      load(true);
    }
  });
  nextBtn.addEventListener('click', () => {
    if (next) {
      cursors[page + 1] = next;
      page++;
      load(true);
    }
  });

  replace(
    main,
    pageHeader(`Explorer: ${obj}`, h('a.btn', { href: `#/mappings/${enc(obj)}/edit` }, 'Edit mapping')),
    h('div.toolbar-row', picker.el),
    form,
    msg,
    h('div.pager', count, h('div.pager-btns', prevBtn, pageLabel, nextBtn)),
    tableBox(`Rows of ${obj}`, table),
  );

  function restart() {
    cursors = [null];
    page = 0;
    load(true);
  }

  function header() {
    const tr = h('tr');
    for (const c of columns) {
      const sorted = state.sort === c.name;
      const dirWord = sorted ? (state.dir === 'asc' ? 'ascending' : 'descending') : 'none';
      const b = h(
        'button.sort',
        { type: 'button', dataset: { sort: c.name }, title: `Sort by ${c.name}` },
        c.name,
        h('span.sort-mark', { 'aria-hidden': 'true' }, sorted ? (state.dir === 'asc' ? ' ▲' : ' ▼') : ''),
      );
      b.addEventListener('click', () => {
        if (state.sort === c.name) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
        else {
          state.sort = c.name;
          state.dir = 'asc';
        }
        restart();
      });
      tr.append(h('th', { scope: 'col', 'aria-sort': dirWord }, b));
    }
    replace(thead, tr);
  }

  function orderColumns(cols) {
    const byName = new Map(cols.map((c) => [c.name, c]));
    const first = FIRST.filter((n) => byName.has(n)).map((n) => byName.get(n));
    return first.concat(cols.filter((c) => !FIRST.includes(c.name)));
  }

  function cell(c, v) {
    if (v === null || v === undefined) return h('td.null', '∅');
    const s = String(v);
    if (c.name === 'id') return h('td.num', s);
    if (c.name === '_hc_lastop') return h('td', badge(s));
    return h('td', { title: s.length > 60 ? s : null }, s.length > 60 ? s.slice(0, 60) + '…' : s);
  }

  function rowEl(r) {
    const id = r.id !== undefined && r.id !== null ? String(r.id) : r.sfid;
    const href = `#/explorer/${enc(obj)}/${enc(id)}`;
    const tr = h('tr.clickable', { dataset: { id, sfid: r.sfid || '' } });
    for (const c of columns) {
      const td = cell(c, r[c.name]);
      if (c.name === 'id' || (c.name === 'sfid' && r.id === undefined)) {
        clear(td);
        td.append(h('a', { href, 'aria-label': `Open row ${id}` }, String(r[c.name])));
      }
      tr.append(td);
    }
    tr.addEventListener('click', (ev) => {
      if (ev.target.closest('a, button')) return;
      if (window.getSelection && String(window.getSelection())) return;
      ctx.navigate(href);
    });
    return tr;
  }

  async function load(userAction) {
    const my = ++seq;
    const q = {
      limit: state.limit,
      sort: state.sort,
      dir: state.dir,
      after: cursors[page],
      field: state.field && state.value !== '' ? state.field : '',
      value: state.field && state.value !== '' ? state.value : '',
      q: state.q,
    };
    let r;
    try {
      r = await get(`/api/v3/mappings/${enc(obj)}/records${qs(q)}`);
    } catch (e) {
      if (my !== seq || !ctx.alive()) return;
      replace(msg, notice('error', e.message));
      if (userAction) emptyRow(tbody, Math.max(columns.length, 1), 'No rows.');
      return;
    }
    if (my !== seq || !ctx.alive()) return;
    clear(msg);
    const cols = orderColumns(Array.isArray(r.columns) ? r.columns : []);
    const colSig = JSON.stringify(cols.map((c) => c.name)) + state.sort + state.dir;
    if (colSig !== thead.dataset.sig) {
      columns = cols;
      header();
      thead.dataset.sig = colSig;
      clear(tbody);
      if (!fieldSel.contains(document.activeElement)) {
        const keep = state.field;
        replace(fieldSel, h('option', { value: '' }, 'any field'), columns.map((c) => h('option', { value: c.name, selected: c.name === keep }, c.name)));
      }
    }
    next = r.next || null;
    const rows = Array.isArray(r.results) ? r.results : [];
    if (!rows.length) emptyRow(tbody, Math.max(columns.length, 1), state.q || state.value ? 'No rows match.' : 'No rows.');
    else syncRows(tbody, rows, (x) => (x.id !== undefined ? x.id : x.sfid), rowEl);
    const est = r.exact ? num(r.estimated_count) : '~' + num(r.estimated_count);
    const filtered = state.q || (state.field && state.value !== '');
    count.textContent = `${est} ${filtered ? 'matching rows' : 'rows'}${r.exact ? '' : ' (estimated)'}`;
    pageLabel.textContent = `Page ${page + 1}`;
    prevBtn.disabled = page === 0;
    nextBtn.disabled = !next;
    if (userAction && document.activeElement && document.activeElement.closest && document.activeElement.closest('#records-table thead')) {
      const again = thead.querySelector(`[data-sort="${CSS.escape(state.sort)}"]`);
      if (again) again.focus();
    }
  }

  let timer = null;
  let stopped = false;
  const refreshLoop = async () => {
    const t0 = performance.now();
    if (!document.hidden && ctx.alive()) await load(false);
    if (!stopped) timer = setTimeout(refreshLoop, Math.max(RECORDS_MS, 4 * (performance.now() - t0)));
  };
  timer = setTimeout(refreshLoop, RECORDS_MS);
  load(true);

  return {
    refresh(st) {
      if (!picker.el.contains(document.activeElement)) picker.fill(mapsOf(st));
    },
    unmount() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

// ---- one record ----------------------------------------------------------------------
function mountRecord(main, params, ctx) {
  const { object: obj, id } = params;
  ctx.setTitle(`${obj} ${id}`);
  const msg = h('div.msgs', { 'aria-live': 'polite' });
  const values = h('tbody');
  const hist = h('tbody');
  const heading = h('h1', `${obj} ${id}`);
  replace(
    main,
    h('nav.crumbs', { 'aria-label': 'Breadcrumb' }, h('a', { href: '#/explorer/' + enc(obj) }, `Explorer: ${obj}`), ' / ', h('span', { 'aria-current': 'page' }, id)),
    h('div.page-head', heading),
    msg,
    h(
      'div.detail',
      h(
        'section.section',
        { 'aria-labelledby': 'values-h' },
        h('h2', { id: 'values-h' }, 'Values'),
        tableBox('Values', h('table.data.kv-table', { id: 'record-values' }, h('thead', h('tr', th('Column'), th('Value'))), values)),
      ),
      h(
        'section.section',
        { 'aria-labelledby': 'history-h' },
        h('h2', { id: 'history-h' }, 'Write history (trigger log)'),
        tableBox(
          'Write history',
          h(
            'table.data',
            { id: 'record-history' },
            h('thead', h('tr', th('Entry'), th('Action'), th('State'), th('Values sent'), th('Salesforce\u2019s message'), th('Created'), th('Processed'))),
            hist,
          ),
        ),
      ),
    ),
  );

  function sentValues(v) {
    if (!v || typeof v !== 'object') return '—';
    const keys = Object.keys(v);
    if (!keys.length) return '—';
    return h('ul.sent', keys.map((k) => h('li', h('code', k), ' = ', v[k] === null ? h('span.null', '∅') : String(v[k]))));
  }

  async function load() {
    let r;
    try {
      r = await get(`/api/v3/mappings/${enc(obj)}/records/${enc(id)}`);
    } catch (e) {
      if (!ctx.alive()) return;
      replace(msg, notice('error', e.message));
      return;
    }
    if (!ctx.alive()) return;
    clear(msg);
    const rec = r.record || {};
    heading.textContent = `${obj} ${rec.name ? '“' + rec.name + '”' : id}`;
    const keys = Object.keys(rec);
    const ordered = FIRST.filter((k) => keys.includes(k)).concat(keys.filter((k) => !FIRST.includes(k)));
    syncRows(
      values,
      ordered.map((k) => [k, rec[k]]),
      (kv) => kv[0],
      ([k, v]) => h('tr', h('th', { scope: 'row' }, h('code', k)), v === null || v === undefined ? h('td.null', '∅') : h('td.wrap', k === '_hc_lastop' ? badge(String(v)) : String(v))),
    );
    const history = Array.isArray(r.history) ? r.history : [];
    if (!history.length) emptyRow(hist, 7, 'No writes from Postgres recorded for this row.');
    else
      syncRows(hist, history, (e) => e.id, (e) =>
        h(
          'tr',
          h('td.num', String(e.id), e.archived ? h('div.small.muted', 'archived') : null),
          h('td', e.action || '—'),
          h('td', badge(e.state)),
          h('td', sentValues(e.values)),
          h('td.wrap', e.sf_message || '—'),
          h('td.nowrap', time(e.created_at)),
          h('td.nowrap', e.processed_at ? time(e.processed_at) : '—'),
        ),
      );
  }
  load();
  return { refresh: load };
}
