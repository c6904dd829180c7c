// Errors: the writes Salesforce refused in the last 24 hours, with Retry and Retry all.
import { h, replace, get, post, paths, time, pageHeader, notice, syncRows, emptyRow, tableBox, th, enc } from './lib.js';

const COLS = 7;

export function mount(main, params, ctx) {
  ctx.setTitle('Errors');
  const msg = h('div.msgs', { 'aria-live': 'polite' });
  const tbody = h('tbody');
  const summary = h('p.muted', { id: 'errors-count' });
  const retryAll = h('button.btn.btn-primary', { type: 'button', id: 'retry-all', disabled: true }, 'Retry all');
  let objectOf = new Map(); // table_name -> object_name

  async function retry(id) {
    try {
      const r = await post(`/api/v3/errors/${enc(String(id))}/actions/retry`);
      const n = r && r.requeued !== undefined ? r.requeued : null;
      replace(msg, notice('ok', id === 'all' ? `Requeued ${n ?? 'every'} failed write${n === 1 ? '' : 's'}.` : `Requeued write ${id}${n === 0 ? ' (nothing to requeue)' : ''}.`));
    } catch (e) {
      replace(msg, notice('error', e.message));
    }
    ctx.refreshNow();
  }
  retryAll.addEventListener('click', () => retry('all'));

  const table = h(
    'table.data',
    { id: 'errors-table' },
    h('caption.sr-only', 'Write errors of the last 24 hours'),
    h('thead', h('tr', th('Table'), th('Record'), th('Action'), th('Time'), th('Salesforce\u2019s message'), th('Entry', { class: 'num' }), th('Retry'))),
    tbody,
  );
  emptyRow(tbody, COLS, 'Loading…');
  replace(
    main,
    pageHeader('Errors', retryAll),
    h('p', 'Writes from Postgres that Salesforce refused in the last 24 hours. Fix the row in Postgres, then retry: sfbridge sends the row\u2019s current values.'),
    summary,
    msg,
    tableBox('Write errors', table),
  );

  function row(e) {
    const obj = objectOf.get(e.table_name) || e.table_name;
    const rid = e.record_id !== null && e.record_id !== undefined ? String(e.record_id) : e.sfid;
    return h(
      'tr',
      { dataset: { error: String(e.id) } },
      h('td', h('code', e.table_name)),
      h('td', rid ? h('a', { href: `#/explorer/${enc(obj)}/${enc(rid)}` }, `${obj} ${rid}`) : '—', e.sfid ? h('div.small.muted', e.sfid) : null),
      h('td', e.action || '—'),
      h('td.nowrap', time(e.processed_at || e.created_at)),
      h('td.wrap.error-msg', e.message || '—'),
      h('td.num', String(e.id)),
      h('td', h('button.btn.btn-small', { type: 'button', 'aria-label': `Retry write ${e.id} of ${obj} ${rid || ''}`.trim(), on: { click: () => retry(e.id) } }, 'Retry')),
    );
  }

  return {
    async refresh(st) {
      objectOf = new Map((st && Array.isArray(st.mappings) ? st.mappings : []).map((m) => [m.table_name, m.object_name]));
      let r;
      try {
        r = await get(`${paths.conn}/errors?hours=24`);
      } catch (e) {
        if (ctx.alive()) replace(msg, notice('error', e.message));
        return;
      }
      if (!ctx.alive()) return;
      const list = Array.isArray(r.results) ? r.results : [];
      summary.textContent = list.length ? `${list.length} failed write${list.length === 1 ? '' : 's'}` : '';
      retryAll.disabled = !list.length;
      if (!list.length) emptyRow(tbody, COLS, 'No write errors in the last 24 hours.');
      else syncRows(tbody, list, (e) => e.id, row);
    },
  };
}
