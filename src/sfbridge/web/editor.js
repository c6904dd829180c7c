// The mapping editor: #/mappings/new (pick an object) and #/mappings/OBJECT/edit.
import { h, replace, clear, get, api, paths, pageHeader, notice, tableBox, th, enc } from './lib.js';

export const UNIQUE_WARNING = 'Read-write mappings require a unique identifier to be specified';
const ALWAYS = new Set(['id', 'systemmodstamp', 'isdeleted', 'createddate', 'name']);
const DEFAULT_POLL = 600;

export function mount(main, params, ctx) {
  const editing = params.object;
  ctx.setTitle(editing ? `Edit ${editing}` : 'Add mapping');
  const msg = h('div.msgs', { 'aria-live': 'polite' });
  const pickerBox = h('div.picker');
  const formBox = h('div.form-box');
  replace(
    main,
    pageHeader(editing ? `Edit mapping: ${editing}` : 'Add mapping', h('a.btn', { href: '#/mappings' }, 'Cancel')),
    msg,
    editing ? null : pickerBox,
    formBox,
  );

  if (editing) loadObject(editing);
  else buildPicker();

  // ---- the object picker -----------------------------------------------------------
  async function buildPicker() {
    const search = h('input', { type: 'search', id: 'object-search', placeholder: 'Filter by name or label', autocomplete: 'off' });
    const select = h('select', { id: 'object-select', size: '8' });
    const count = h('p.muted.small', { id: 'object-count', 'aria-live': 'polite' });
    replace(
      pickerBox,
      h(
        'section.section',
        { 'aria-labelledby': 'pick-h' },
        h('h2', { id: 'pick-h' }, '1. Choose a Salesforce object'),
        h('div.field', h('label', { for: 'object-search' }, 'Search objects'), search),
        h('div.field', h('label', { for: 'object-select' }, 'Object'), select),
        count,
      ),
    );
    let objects = [];
    try {
      const r = await get(`${paths.conn}/objects`);
      objects = (Array.isArray(r.results) ? r.results : []).slice().sort((a, b) => a.name.localeCompare(b.name));
    } catch (e) {
      replace(msg, notice('error', e.message));
      return;
    }
    if (!ctx.alive()) return;
    const fill = () => {
      const q = search.value.trim().toLowerCase();
      const keep = select.value;
      clear(select);
      const shown = objects.filter((o) => !q || o.name.toLowerCase().includes(q) || String(o.label || '').toLowerCase().includes(q));
      for (const o of shown) {
        select.append(
          h('option', { value: o.name, selected: o.name === keep }, `${o.name} — ${o.label || o.name}${o.mapped ? ' (mapped)' : ''}`),
        );
      }
      count.textContent = `${shown.length} of ${objects.length} objects`;
    };
    search.addEventListener('input', fill);
    search.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowDown' && select.options.length) {
        ev.preventDefault();
        select.focus();
        if (select.selectedIndex < 0) {
          select.selectedIndex = 0;
          loadObject(select.value);
        }
      }
    });
    select.addEventListener('change', () => {
      if (select.value) loadObject(select.value);
    });
    fill();
  }

  // ---- the form ----------------------------------------------------------------------
  async function loadObject(name) {
    replace(formBox, h('p.muted', `Loading ${name}…`));
    clear(msg);
    let d;
    try {
      d = await get(`${paths.conn}/objects/${enc(name)}`);
    } catch (e) {
      if (!ctx.alive()) return;
      replace(formBox);
      replace(msg, notice('error', e.message));
      return;
    }
    if (!ctx.alive()) return;
    if (!editing && d.mapping) {
      replace(
        msg,
        notice('warn', `${d.name} is mapped already. `),
      );
      msg.firstChild.append(h('a', { href: `#/mappings/${enc(d.name)}/edit` }, `Edit its mapping`), '.');
    }
    buildForm(d);
  }

  function buildForm(d) {
    const cfg = d.mapping || null;
    const fields = Array.isArray(d.fields) ? d.fields : [];
    const mapped = new Set((cfg && cfg.fields ? cfg.fields : []).map((f) => f.toLowerCase()));
    const extIds = Array.isArray(d.external_id_fields) ? d.external_id_fields : fields.filter((f) => f.external_id).map((f) => f.name);

    const boxes = [];
    const filter = h('input', { type: 'search', id: 'field-filter', placeholder: 'Filter fields', autocomplete: 'off' });
    const selectAll = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select all fields' });
    const chosenCount = h('span.muted', { id: 'field-count', 'aria-live': 'polite' });
    const tbody = h('tbody');
    for (const f of fields) {
      const always = ALWAYS.has(f.name.toLowerCase());
      const cb = h('input', {
        type: 'checkbox',
        id: 'field-' + f.name,
        value: f.name,
        checked: always || mapped.has(f.name.toLowerCase()),
        disabled: always,
        'aria-label': `Map ${f.name}`,
        dataset: { field: f.name },
      });
      boxes.push(cb);
      const tr = h(
        'tr',
        { dataset: { field: f.name } },
        h('td.check-col', cb),
        h('th', { scope: 'row' }, h('label', { for: 'field-' + f.name }, h('code', f.name))),
        h('td', f.label || ''),
        h('td', f.type + (f.length && /string|textarea|email|url|phone|picklist/.test(f.type) ? `(${f.length})` : '')),
        h('td', f.required ? 'yes' : ''),
        h('td', f.external_id ? 'External ID' + (f.unique ? ', unique' : '') : f.unique ? 'unique' : ''),
      );
      if (always) tr.classList.add('always');
      tbody.append(tr);
    }
    const recount = () => {
      const n = boxes.filter((b) => b.checked).length;
      chosenCount.textContent = `${n} of ${boxes.length} fields selected`;
      const free = boxes.filter((b) => !b.disabled);
      selectAll.checked = free.length > 0 && free.every((b) => b.checked);
      selectAll.indeterminate = !selectAll.checked && free.some((b) => b.checked);
    };
    tbody.addEventListener('change', recount);
    selectAll.addEventListener('change', () => {
      for (const b of boxes) {
        if (!b.disabled && !b.closest('tr').hidden) b.checked = selectAll.checked;
      }
      recount();
    });
    filter.addEventListener('input', () => {
      const q = filter.value.trim().toLowerCase();
      for (const tr of tbody.children) {
        const f = fields.find((x) => x.name === tr.dataset.field);
        tr.hidden = q && !(f.name.toLowerCase().includes(q) || String(f.label || '').toLowerCase().includes(q));
      }
    });

    const poll = h('input', { type: 'number', id: 'poll-seconds', min: '1', step: '1', inputmode: 'numeric', value: String(cfg ? cfg.sf_polling_seconds : DEFAULT_POLL) });
    const accel = h('input', { type: 'checkbox', id: 'accelerate', checked: !!(cfg && cfg.sf_notify_enabled) });
    const write = h('input', { type: 'checkbox', id: 'write-sf', checked: !!(cfg && cfg.access === 'read_write') });
    const unique = h('select', { id: 'unique-id' }, h('option', { value: '' }, 'none'), extIds.map((n) => h('option', { value: n }, n)));
    if (cfg && cfg.upsert_field) unique.value = cfg.upsert_field;
    const warning = h('p.notice.notice-warn', { id: 'unique-warning', role: 'status' }, UNIQUE_WARNING);
    const uniqueHelp = h(
      'p.help',
      { id: 'unique-help' },
      extIds.length ? `The External ID fields of ${d.name}.` : `${d.name} has no External ID field.`,
    );
    unique.setAttribute('aria-describedby', 'unique-help');
    const showWarning = () => {
      warning.hidden = !(write.checked && !unique.value);
    };
    write.addEventListener('change', showWarning);
    unique.addEventListener('change', showWarning);
    showWarning();

    const saveMsg = h('div', { 'aria-live': 'polite' });
    const saveBtn = h('button.btn.btn-primary', { type: 'submit', id: 'save' }, editing ? 'Save changes' : 'Save mapping');
    const form = h(
      'form.editor',
      { novalidate: true, 'aria-labelledby': 'form-h' },
      h('h2', { id: 'form-h' }, editing ? `${d.label || d.name} (${d.name})` : `2. Configure ${d.label || d.name} (${d.name})`),
      h(
        'div.form-grid',
        h('div.field', h('label', { for: 'poll-seconds' }, 'Poll frequency (seconds)'), poll),
        h('div.field.check', accel, h('label', { for: 'accelerate' }, 'Accelerate Polling'), h('p.help', 'Stream changes from Salesforce as they happen (Change Data Capture), polling as a fallback.')),
        h('div.field.check', write, h('label', { for: 'write-sf' }, 'Write to Salesforce'), h('p.help', 'Send changes made in Postgres back to Salesforce (read-write).')),
        h('div.field', h('label', { for: 'unique-id' }, 'Unique identifier'), unique, uniqueHelp),
      ),
      warning,
      h(
        'section.section',
        { 'aria-labelledby': 'fields-h' },
        h('div.section-head', h('h3', { id: 'fields-h' }, 'Fields'), chosenCount),
        h('div.field.inline', h('label', { for: 'field-filter' }, 'Filter fields'), filter),
        tableBox(
          'Fields of ' + d.name,
          h(
            'table.data.fields',
            { id: 'fields-table' },
            h('caption.sr-only', 'Fields of ' + d.name),
            h('thead', h('tr', h('td.check-col', selectAll), th('Name'), th('Label'), th('Type'), th('Required'), th('External ID'))),
            tbody,
          ),
        ),
      ),
      saveMsg,
      h('div.form-actions', saveBtn, h('a.btn', { href: '#/mappings' }, 'Cancel')),
    );
    recount();

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clear(saveMsg);
      const config = {
        access: write.checked ? 'read_write' : 'read_only',
        fields: boxes.filter((b) => b.checked).map((b) => b.value),
        sf_notify_enabled: accel.checked,
        upsert_field: unique.value || null,
      };
      const secs = poll.value.trim();
      config.sf_polling_seconds = /^\d+$/.test(secs) ? Number(secs) : secs;
      saveBtn.disabled = true;
      try {
        const r = editing
          ? await api('PATCH', `/api/v3/mappings/${enc(d.name)}`, { config })
          : await api('POST', `${paths.conn}/mappings`, { object_name: d.name, config });
        const warns = r && Array.isArray(r.warnings) && r.warnings.length ? ' ' + r.warnings.join(' ') : '';
        ctx.flash(warns ? 'warn' : 'ok', (editing ? `Saved the mapping of ${d.name}.` : `Created the mapping of ${d.name}; its initial load starts now.`) + warns);
        ctx.navigate('#/mappings');
      } catch (e) {
        saveBtn.disabled = false;
        replace(saveMsg, h('div.notice.notice-error', { role: 'alert', id: 'save-error' }, e.message));
      }
    });
    replace(formBox, form);
  }

  return {};
}
