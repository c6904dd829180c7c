// Overview: the connection, its health, the API budget, streams, writes; activity charts.
import { h, replace, get, api, paths, badge, stateKind, num, duration, timeEl, pageHeader, notice } from './lib.js';
import { chart } from './chart.js';

const WINDOWS = { 1: 'last hour', 24: 'last day' };

function lagText(v) {
  if (v === null || v === undefined) return '—';
  if (v > 0 && v < 0.1) return '< 0.1 s';
  return v < 10 ? `${Math.round(v * 10) / 10} s` : duration(v);
}

export function mount(main, params, ctx) {
  ctx.setTitle('Overview');
  let hours = Number(sessionStorage.getItem('sfbridge.activityHours')) === 24 ? 24 : 1;
  const cards = h('div.cards', { id: 'overview-cards' });
  const charts = h('div.charts', { id: 'charts' });
  const chartNote = h('p.muted.chart-note');
  const toggles = {};
  const toggle = h('div.segmented', { role: 'group', 'aria-label': 'Activity window' });
  for (const [hrs, label] of [
    [1, 'Last hour'],
    [24, 'Last day'],
  ]) {
    const b = h('button.seg', {
      type: 'button',
      'aria-pressed': String(hrs === hours),
      dataset: { hours: String(hrs) },
      on: {
        click: () => {
          hours = hrs;
          sessionStorage.setItem('sfbridge.activityHours', String(hrs));
          charts.dataset.sig = '';
          for (const [k, el] of Object.entries(toggles)) el.setAttribute('aria-pressed', String(Number(k) === hours));
          refreshActivity();
        },
      },
    }, label);
    toggles[hrs] = b;
    toggle.append(b);
  }
  const flash = ctx.takeFlash();
  replace(
    main,
    pageHeader('Overview'),
    flash,
    cards,
    setupSection(),
    h('section.section', { 'aria-labelledby': 'activity-h' }, h('div.section-head', h('h2', { id: 'activity-h' }, 'Activity'), toggle), chartNote, charts),
  );

  async function refreshActivity() {
    let act;
    try {
      act = await get(`${paths.conn}/activity?hours=${hours}`);
    } catch (e) {
      if (!ctx.alive()) return;
      replace(charts, notice('error', 'Activity is not available: ' + e.message));
      charts.dataset.sig = '';
      return;
    }
    if (!ctx.alive()) return;
    const buckets = Array.isArray(act.buckets) ? act.buckets : [];
    const bs = act.bucket_seconds || (hours === 1 ? 60 : 900);
    replace(chartNote, `Over the ${WINDOWS[hours]}, one bar per ${duration(bs)}.`);
    // one or two charts a row (as app.css lays them out); each drawn at its real width
    const room = charts.clientWidth || 800;
    const perRow = room >= 2 * 420 + 16 ? 2 : 1;
    const width = (room - (perRow - 1) * 16) / perRow - 24;
    const common = { buckets, bucketSeconds: bs, windowLabel: WINDOWS[hours], width };
    // unchanged data is not drawn again (a bar's tooltip stays up)
    const sig = JSON.stringify([buckets, bs, Math.round(width)]);
    if (sig === charts.dataset.sig) return;
    charts.dataset.sig = sig;
    replace(
      charts,
      chart({ ...common, title: 'Rows in (Salesforce → Postgres)', key: 'rows_in' }),
      chart({ ...common, title: 'Rows out (Postgres → Salesforce)', key: 'rows_out' }),
      chart({ ...common, title: 'Errors', key: 'errors' }),
      chart({ ...common, title: 'Lag', key: 'lag_seconds', kind: 'line', fmt: lagText }),
    );
  }

  // "Set up connection": the OAuth web flow, as Heroku Connect's first step. The browser goes
  // to Salesforce's login page and comes back to /oauth/callback on this server, which keeps
  // the refresh token and has sfbridge read its settings again.
  function setupSection() {
    const msg = h('div.msgs', { 'aria-live': 'polite' });
    const kinds = [
      ['default', 'The login host sfbridge is set up with (SF_LOGIN_URL)'],
      ['sandbox', 'A sandbox (test.salesforce.com)'],
      ['domain', 'My Domain:'],
    ];
    const radios = kinds.map(([v, label], i) => {
      const id = `setup-${v}`;
      const input = h('input', { type: 'radio', name: 'setup-host', id, value: v, checked: i === 0 });
      return h('p.check', input, h('label', { for: id }, label));
    });
    const domain = h('input', { type: 'url', id: 'setup-domain', placeholder: 'https://MyDomainName.my.salesforce.com', 'aria-label': 'My Domain URL' });
    radios[2].append(' ', domain);
    domain.addEventListener('focus', () => {
      radios[2].querySelector('input').checked = true;
    });
    const go = h('button.btn.btn-primary', { type: 'submit', id: 'setup-go' }, 'Continue to Salesforce');
    const form = h(
      'form.setup',
      { id: 'setup-form' },
      h('p.muted', `Log in to Salesforce as the integration user and allow access. Salesforce sends you back to ${location.origin}/oauth/callback, which must be a callback URL of the connected app; sfbridge keeps the refresh token and logs in with it from then on.`),
      h('fieldset', h('legend', 'Where to log in'), radios),
      h('div.form-actions', go),
      msg,
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const kind = form.querySelector('input[name="setup-host"]:checked').value;
      const body = kind === 'sandbox' ? { sandbox: true } : kind === 'domain' ? { login_url: domain.value.trim() } : {};
      go.disabled = true;
      try {
        const r = await api('POST', `${paths.conn}/actions/authorize`, body);
        location.assign(r.authorize_url);
      } catch (e) {
        replace(msg, notice('error', e.message));
        go.disabled = false;
      }
    });
    return h('details.section.setup-box', { id: 'setup' }, h('summary', h('span.summary-title', 'Set up connection')), form);
  }

  function card(title, id, ...body) {
    return h('section.card', { 'aria-labelledby': id }, h('h2', { id }, title), body);
  }

  function dl(pairs) {
    return h(
      'dl.kv',
      pairs.filter(Boolean).map(([k, v]) => [h('dt', k), h('dd', v === null || v === undefined || v === '' ? '—' : v)]),
    );
  }

  function renderCards(st) {
    if (!st) {
      replace(cards, notice('error', 'The connection\u2019s status cannot be read.'));
      cards.dataset.sig = '';
      return;
    }
    // rebuilt only when something shown changed (the heartbeat counts in 10 s steps), and
    // not under the keyboard's focus
    const c0 = st.connection || {};
    const beat = c0.heartbeat_at ? Math.floor((Date.now() - Date.parse(c0.heartbeat_at)) / 10000) : null;
    const sig = JSON.stringify([{ ...st, connection: { ...c0, heartbeat_at: beat } }]);
    if (sig === cards.dataset.sig || cards.contains(document.activeElement)) return;
    cards.dataset.sig = sig;
    const c = st.connection || {};
    const maps = Array.isArray(st.mappings) ? st.mappings : [];
    const health = st.health || { status: 'unknown', reasons: [] };
    const used = maps.reduce((a, m) => a + (Number(m.api_calls_today) || 0), 0);
    const max = maps.reduce((a, m) => a + (Number(m.sf_max_daily_api_calls) || 0), 0);
    const pct = max ? Math.min(100, (used / max) * 100) : 0;
    const meter = h('div.meter', h('div.meter-fill', { class: pct > 90 ? 'meter-bad' : pct > 70 ? 'meter-warn' : '' }));
    meter.firstChild.style.width = pct.toFixed(1) + '%';
    const streams = maps.filter((m) => m.stream && typeof m.stream === 'object');
    const w = st.writer || {};
    replace(
      cards,
      card(
        'Connection',
        'card-conn',
        dl([
          ['State', badge(st.state || c.state)],
          ['Org ID', h('code', c.org_id || st.org_id || '—')],
          ['Instance URL', c.instance_url || st.instance_url],
          ['API version', c.api_version || st.api_version],
          ['Schema', h('code', st.schema_name || st.schema || '—')],
          ['Daemon', c.daemon_alive ? `running (pid ${c.daemon_pid}${c.daemon_host ? ' on ' + c.daemon_host : ''})` : 'not running'],
          c.last_error ? ['Last error', c.last_error] : null,
        ]),
      ),
      card(
        'Health',
        'card-health',
        h('p.verdict', badge(health.status, stateKind(health.status))),
        health.reasons && health.reasons.length
          ? h('ul.reasons', health.reasons.map((r) => h('li', r)))
          : h('p.muted', 'Nothing needs attention.'),
      ),
      card(
        'API budget today',
        'card-budget',
        h('p.big', { id: 'api-budget' }, `${num(used)} / ${num(max)}`),
        meter,
        h('p.muted', `Salesforce API calls made today by ${maps.length} mapping${maps.length === 1 ? '' : 's'}, against their daily budgets.`),
      ),
      card(
        'Sync',
        'card-sync',
        dl([
          ['Mappings', `${maps.length} (${maps.filter((m) => m.state === 'DATA_SYNCED').length} synced)`],
          ['Streams', streams.length ? h('ul.streams', streams.map((m) => h('li', m.object_name + ' ', badge(m.stream.state)))) : 'none (polling only)'],
          ['Writes pending', num(w.pending)],
          ['Writes retrying', num(w.retrying)],
          ['Writes failed', w.failed ? h('a', { href: '#/errors' }, num(w.failed)) : '0'],
          ['Heartbeat', c.heartbeat_at ? timeEl(c.heartbeat_at, true) : '—'],
        ]),
      ),
    );
  }

  return {
    async refresh(st) {
      renderCards(st);
      await refreshActivity();
    },
  };
}

