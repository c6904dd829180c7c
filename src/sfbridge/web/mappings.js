// Mappings: one row per mapping, its numbers and its actions; export and import.
import { h, replace, get, post, api, paths, badge, num, duration, timeEl, pageHeader, notice, syncRows, emptyRow, tableBox, th, enc } from './lib.js';

const COLS = 11;

function lagOf(m) {
  if (m.lag_seconds !== undefined && m.lag_seconds !== null) return duration(m.lag_seconds);
  if (m.stream && m.stream.lag_ms !== undefined && m.stream.lag_ms !== null) {
    return m.stream.lag_ms < 1000 ? `${m.stream.lag_ms} ms` : duration(m.stream.lag_ms / 1000);
  }
  return '—';
}

function writesOf(m, failedByTable) {
  const w = m.writes && typeof m.writes === 'object' ? m.writes : {};
  const pending = m.pending_writes ?? w.pending ?? null;
  const failed = m.failed_writes ?? w.failed ?? failedByTable.get(m.table_name) ?? 0;
  return { pending, failed };
}

function stateCell(m) {
  const parts = [badge(m.paused ? 'PAUSED' : m.state)];
  const ld = m.load;
  if (ld && typeof ld === 'object') {
    const done = Number(ld.done) || 0;
    const total = Number(ld.total) || 0;
    const pct = total ? Math.min(100, Math.floor((done / total) * 100)) : null;
    const what = ld.reload ? 'Reload' : 'Initial load';
    const bar = h('progress', { max: '100', value: String(pct ?? 0), 'aria-label': `${what} of ${m.object_name}` });
    const rows = pct !== null ? `${num(done)} of ${num(total)} rows` : `${num(done)} rows`;
    parts.push(h('div.load', bar, h('span.muted', ld.reload ? `reload: ${rows}` : rows)));
  } else if (m.last_error && m.state !== 'DATA_SYNCED') {
    parts.push(h('div.small.muted', m.last_error));
  }
  return parts;
}

export function mount(main, params, ctx) {
  ctx.setTitle('Mappings');
  const msg = h('div.msgs', { 'aria-live': 'polite' });
  const tbody = h('tbody');
  const fileInput = h('input.sr-only', { type: 'file', accept: 'application/json,.json', id: 'import-file', tabindex: '-1', 'aria-hidden': 'true' });
  const dialog = buildDialog();

  function say(kind, text) {
    replace(msg, notice(kind, text));
  }

  async function action(obj, what, label) {
    try {
      await post(`/api/v3/mappings/${enc(obj)}/actions/${what}`);
      say('ok', `${label} ${obj}: done.`);
    } catch (e) {
      say('error', e.message);
    }
    ctx.refreshNow();
  }

  async function doExport() {
    try {
      const data = await get(`${paths.conn}/export`);
      const blob = new Blob([JSON.stringify(data, null, 2) + '\n'], { type: 'application/json' });
      const url = URL.createObjectURL(blob);
      const a = h('a.sr-only', { href: url, download: 'sfbridge-mappings.json' }, 'download');
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      say('ok', `Exported ${Array.isArray(data.mappings) ? data.mappings.length : 0} mappings to sfbridge-mappings.json.`);
    } catch (e) {
      say('error', e.message);
    }
  }

  fileInput.addEventListener('change', async () => {
    const f = fileInput.files && fileInput.files[0];
    if (!f) return;
    let body;
    try {
      body = JSON.parse(await f.text());
    } catch (e) {
      say('error', `${f.name} is not JSON: ${e.message}`);
      fileInput.value = '';
      return;
    }
    try {
      const r = await post(`${paths.conn}/actions/import`, body);
      const n = r && (r.count ?? (Array.isArray(r.results) ? r.results.length : null));
      say('ok', `Imported ${f.name}${n !== null && n !== undefined ? ` (${n} mappings)` : ''}.`);
    } catch (e) {
      say('error', e.message);
    }
    fileInput.value = '';
    ctx.refreshNow();
  });

  function buildDialog() {
    const title = h('h2', { id: 'remove-title' });
    const drop = h('input', { type: 'checkbox', id: 'remove-drop' });
    const dropLabel = h('label', { for: 'remove-drop' });
    const confirmBtn = h('button.btn.btn-danger', { type: 'button', value: 'remove' }, 'Remove');
    const cancelBtn = h('button.btn', { type: 'button', value: 'cancel' }, 'Cancel');
    const text = h('p');
    const d = h(
      'dialog.dialog',
      { 'aria-labelledby': 'remove-title' },
      title,
      text,
      h('p.check', drop, dropLabel),
      h('div.dialog-actions', cancelBtn, confirmBtn),
    );
    let target = null;
    cancelBtn.addEventListener('click', () => d.close());
    confirmBtn.addEventListener('click', async () => {
      const m = target;
      d.close();
      if (!m) return;
      try {
        await api('DELETE', `/api/v3/mappings/${enc(m.object_name)}${drop.checked ? '?drop_table=1' : ''}`);
        say('ok', `Removing ${m.object_name}${drop.checked ? ' and its table' : ''}.`);
      } catch (e) {
        say('error', e.message);
      }
      ctx.refreshNow();
    });
    d.open_for = (m) => {
      target = m;
      title.textContent = `Remove the mapping of ${m.object_name}?`;
      text.textContent = `sfbridge stops syncing ${m.object_name}. Salesforce is not changed.`;
      dropLabel.textContent = `Also drop the table ${m.table_name} and its data`;
      drop.checked = false;
      d.showModal();
      cancelBtn.focus();
    };
    return d;
  }

  function row(m, failedByTable) {
    const { pending, failed } = writesOf(m, failedByTable);
    const poll = m.sf_notify_enabled ? 'accelerated' : m.sf_polling_seconds ? duration(m.sf_polling_seconds) : '—';
    const obj = m.object_name;
    const btn = (label, what, extra) =>
      h('button.btn.btn-small', Object.assign({ type: 'button', 'aria-label': `${label} ${obj}`, on: { click: () => action(obj, what, label) } }, extra || {}), label);
    return h(
      'tr',
      { dataset: { object: obj } },
      h('th', { scope: 'row' }, h('a', { href: `#/explorer/${enc(obj)}` }, obj), h('div.small.muted', m.table_name)),
      h('td', { dataset: { col: 'state' } }, stateCell(m)),
      h('td', m.access === 'read_write' ? 'read-write' : 'read only'),
      h('td', { dataset: { col: 'poll' } }, poll),
      h('td.num', { dataset: { col: 'sf_rows' } }, num(m.sf_rows)),
      h('td.num', { dataset: { col: 'rows' } }, (m.rows_estimated ? '~' : '') + num(m.rows)),
      h('td.num', { dataset: { col: 'pending' } }, num(pending)),
      h('td.num', { dataset: { col: 'failed' } }, failed ? h('a.bad', { href: '#/errors' }, num(failed)) : '0'),
      h('td.nowrap', timeEl(m.last_poll_at, true)),
      h('td.nowrap', { dataset: { col: 'lag' } }, lagOf(m)),
      h(
        'td.row-actions',
        m.paused || m.state === 'PAUSED' ? btn('Resume', 'resume') : btn('Pause', 'pause'),
        btn('Reload', 'reload'),
        h('a.btn.btn-small', { href: `#/mappings/${enc(obj)}/edit`, 'aria-label': `Edit ${obj}` }, 'Edit'),
        h('button.btn.btn-small.btn-danger-quiet', { type: 'button', 'aria-label': `Remove ${obj}`, on: { click: () => dialog.open_for(m) } }, 'Remove'),
      ),
    );
  }

  const table = h(
    'table.data',
    { id: 'mappings-table' },
    h('caption.sr-only', 'Mappings'),
    h(
      'thead',
      h(
        'tr',
        th('Object'),
        th('State'),
        th('Access'),
        th('Poll'),
        th('Salesforce rows', { class: 'num' }),
        th('Postgres rows', { class: 'num' }),
        th('Pending writes', { class: 'num' }),
        th('Failed writes', { class: 'num' }),
        th('Last poll'),
        th('Lag'),
        th('Actions'),
      ),
    ),
    tbody,
  );
  emptyRow(tbody, COLS, 'Loading…');

  replace(
    main,
    pageHeader(
      'Mappings',
      h('a.btn.btn-primary', { href: '#/mappings/new', id: 'add-mapping' }, 'Add mapping'),
      h('button.btn', { type: 'button', id: 'export', on: { click: doExport } }, 'Export'),
      h('button.btn', { type: 'button', id: 'import', on: { click: () => fileInput.click() } }, 'Import…'),
    ),
    ctx.takeFlash(),
    msg,
    fileInput,
    tableBox('Mappings table', table),
    dialog,
  );

  return {
    async refresh(st) {
      if (!st) return;
      const maps = Array.isArray(st.mappings) ? st.mappings : [];
      let failedByTable = new Map();
      if (!maps.every((m) => m.failed_writes !== undefined || (m.writes && m.writes.failed !== undefined))) {
        try {
          const errs = await get(`${paths.conn}/errors?hours=24`);
          for (const e of errs.results || []) failedByTable.set(e.table_name, (failedByTable.get(e.table_name) || 0) + 1);
        } catch (e) {
          failedByTable = new Map();
        }
      }
      if (!ctx.alive()) return;
      if (!maps.length) {
        emptyRow(tbody, COLS, 'No mappings yet. Add one to start syncing.');
        return;
      }
      syncRows(
        tbody,
        maps,
        (m) => m.object_name,
        (m) => row(m, failedByTable),
        (m) => JSON.stringify([m, ago10(m.last_poll_at), failedByTable.get(m.table_name) || 0]),
      );
    },
  };
}

// The "N s ago" text changes as time passes: rebuild a row every 10 s at least.
function ago10(ts) {
  return ts ? Math.floor((Date.now() - Date.parse(ts)) / 10000) : 0;
}
