// Fault injection as a client sees it: every fault set through /admin/faults
// (PUT rules, GET shows them, DELETE clears) and through the --faults start-up
// flag, observed from jsforce and fetch -- added latency, injected 500/503,
// connections reset mid-response, an offline link, a spent daily API budget,
// UNABLE_TO_LOCK_ROW on writes, expired sessions, path patterns -- and normal
// service back at once when the faults are cleared.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import * as lf from './lib/localforce.mjs';

const SEED_ENV = { LOCALFORCE_FAULTS_SEED: '20240611' };
const T = { timeout: 60000 };

let server;
let conn;

before(async () => {
  server = await lf.startServer({ env: SEED_ENV });
  conn = await lf.login(server);
});

afterEach(async () => {
  // Each test starts from a healthy server, whatever the last one left.
  if (server && server.proc.exitCode === null && server.proc.signalCode === null) await lf.clearFaults(server);
});

after(async () => {
  await server?.stop();
});

let uniq = 0;
const tag = (p) => `${p}-${process.pid}-${++uniq}`;
function teacher(extra = {}) {
  const n = ++uniq;
  return { First_Name__c: `Fault ${n}`, Email__c: `f${n}.${process.pid}@faults.test`, ...extra };
}

const soql = "SELECT Id FROM Account WHERE External_Id__c = 'S-1'";

/** Milliseconds fn takes. */
async function timed(fn) {
  const t0 = performance.now();
  const v = await fn();
  return { ms: performance.now() - t0, v };
}

/** GET a REST path with fetch and the connection's token; never throws on HTTP errors. */
const get = (p, opts = {}) => lf.http(server, lf.rest(p), { token: conn.accessToken, ...opts });

async function assertHealthy(what) {
  const { ms, v } = await timed(() => conn.query(soql));
  assert.equal(v.totalSize, 1, what);
  assert.ok(ms < 1000, `${what}: a plain query took ${ms.toFixed(0)} ms`);
}

test('/admin/faults: GET shows no rules, PUT sets them, GET shows them, DELETE clears them', T, async () => {
  const empty = await lf.getFaults(server);
  assert.deepEqual(empty.rules, []);
  const rules = [
    { latency_ms: 200, jitter_ms: 50, path: '/services/*' },
    { error_rate: 0.2, status: 503 },
    { lock_rate: 0.5 },
  ];
  await lf.setFaults(server, { rules });
  const shown = await lf.getFaults(server);
  assert.equal(shown.rules.length, 3, JSON.stringify(shown));
  assert.equal(shown.rules[0].latency_ms, 200);
  assert.equal(shown.rules[0].jitter_ms, 50);
  assert.equal(shown.rules[0].path, '/services/*');
  assert.equal(shown.rules[1].error_rate, 0.2);
  assert.equal(shown.rules[1].status, 503);
  assert.equal(shown.rules[2].lock_rate, 0.5);
  await lf.clearFaults(server);
  assert.deepEqual((await lf.getFaults(server)).rules, []);

  // Nonsense is refused with a 400 and changes nothing.
  await lf.setFaults(server, { rules: [{ latency_ms: 10 }] });
  for (const body of [
    { rules: [{ latency_ms: -5 }] },
    { rules: [{ error_rate: 2 }] },
    { rules: [{ error_rate: 1, status: 418 }] },
    { rules: [{ frobnicate: true }] },
    { rules: 'all of them' },
    { nonsense: 1 },
  ]) {
    const res = await lf.http(server, '/admin/faults', { method: 'PUT', body });
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.status} ${res.text}`);
  }
  const bad = await lf.http(server, '/admin/faults', {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"rules": [',
  });
  assert.equal(bad.status, 400, bad.text);
  assert.deepEqual((await lf.getFaults(server)).rules, [{ latency_ms: 10 }], 'a refused PUT must not change the rules');
});

test('latency: every API call is delayed by at least latency_ms; admin calls are not', T, async () => {
  await assertHealthy('before');
  await lf.setFaults(server, { rules: [{ latency_ms: 400 }] });
  for (let i = 0; i < 3; i++) {
    const { ms, v } = await timed(() => conn.query(soql));
    assert.equal(v.totalSize, 1);
    assert.ok(ms >= 400, `a query with 400 ms latency answered in ${ms.toFixed(0)} ms`);
    assert.ok(ms < 3000, `a query with 400 ms latency took ${ms.toFixed(0)} ms`);
  }
  const { ms: adminMs } = await timed(() => lf.getFaults(server));
  assert.ok(adminMs < 300, `the admin API is never delayed (took ${adminMs.toFixed(0)} ms)`);

  // Jitter spreads the delay around the latency, never below latency - jitter.
  await lf.setFaults(server, { rules: [{ latency_ms: 300, jitter_ms: 200 }] });
  const delays = [];
  for (let i = 0; i < 6; i++) delays.push((await timed(() => conn.query(soql))).ms);
  for (const d of delays) assert.ok(d >= 100 && d < 3000, `delays with 300±200 ms: ${delays.map((x) => x.toFixed(0))}`);

  // Many delayed requests in parallel are delayed together, not one after another.
  await lf.setFaults(server, { rules: [{ latency_ms: 500 }] });
  const { ms: par } = await timed(() => Promise.all(Array.from({ length: 20 }, () => conn.query(soql))));
  assert.ok(par >= 500 && par < 4000, `20 parallel queries with 500 ms latency took ${par.toFixed(0)} ms`);
  await lf.clearFaults(server);
  await assertHealthy('after DELETE');
});

test('error_rate 1 with status 503 -> jsforce SERVER_UNAVAILABLE; status 500 -> 500; a rate of 0.5 hits some', T, async () => {
  await lf.setFaults(server, { rules: [{ error_rate: 1, status: 503 }] });
  // jsforce retries GETs on 5xx (5 times, 0.5 s doubling); a write and a GET
  // with retries off show the error at once.
  const werr = await lf.catchError(() => conn.sobject('Teacher__c').create(teacher()), 'a create with error_rate 1');
  assert.equal(werr.name, 'SERVER_UNAVAILABLE', `${werr.name}: ${werr.message}`);
  const err = await lf.catchError(() => conn.request(lf.rest('/limits'), { retry: { maxRetries: 0 } }),
    'a GET with error_rate 1');
  assert.equal(err.name, 'SERVER_UNAVAILABLE', `${err.name}: ${err.message}`);
  const raw = await get('/limits');
  assert.equal(raw.status, 503, raw.text);
  assert.match(raw.headers.get('content-type') || '', /^application\/json(;|$)/);
  assert.equal(raw.json?.[0]?.errorCode, 'SERVER_UNAVAILABLE', raw.text);
  assert.equal(typeof raw.json[0].message, 'string');

  await lf.setFaults(server, { rules: [{ error_rate: 1, status: 500 }] });
  const r500 = await get('/limits');
  assert.equal(r500.status, 500, r500.text);
  assert.equal(typeof r500.json?.[0]?.errorCode, 'string', r500.text);
  const e500 = await lf.catchError(() => conn.sobject('Teacher__c').create(teacher()), 'a create with status 500');
  assert.equal(e500.name, r500.json[0].errorCode);

  await lf.setFaults(server, { rules: [{ error_rate: 0.5, status: 503 }] });
  let failed = 0;
  for (let i = 0; i < 60; i++) if ((await get('/limits')).status === 503) failed++;
  assert.ok(failed >= 12 && failed <= 48, `error_rate 0.5 failed ${failed} of 60 requests`);

  await lf.clearFaults(server);
  await assertHealthy('after DELETE');
});

test('jsforce\'s own retry of a 503 GET succeeds once the faults are cleared', T, async () => {
  await lf.setFaults(server, { rules: [{ error_rate: 1, status: 503 }] });
  const t0 = Date.now();
  // A jsforce Query runs when it is first awaited: start it now.
  const query = conn.query(soql).then((r) => r);
  // jsforce waits 0.5 s before its first retry; clear the faults before that.
  await lf.sleep(200);
  await lf.clearFaults(server);
  const res = await query;
  assert.equal(res.totalSize, 1);
  assert.ok(Date.now() - t0 >= 450, `the query succeeded after ${Date.now() - t0} ms: it never met the 503`);
});

test('reset_rate 1: the client sees the connection cut mid-response', T, async () => {
  await lf.setFaults(server, { rules: [{ reset_rate: 1 }] });
  const transport = /ECONNRESET|socket hang up|premature close|terminated|aborted|other side closed|UND_ERR_SOCKET/i;

  // fetch: the status line arrives, the body is cut short.
  let err = null;
  try {
    const res = await fetch(server.url + lf.rest('/query?q=' + encodeURIComponent(soql)),
      { headers: { authorization: `Bearer ${conn.accessToken}` } });
    await res.text();
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'fetch read a whole response through reset_rate 1');
  assert.match(`${err.message} ${err.cause?.code ?? ''} ${err.cause?.message ?? ''}`, transport);

  // node:http: the response is aborted / closed before it is complete.
  const outcome = await new Promise((resolve) => {
    const get = server.url.startsWith('https:') ? httpsGet : httpGet;
    const req = get(server.url + lf.rest('/limits'), { headers: { authorization: `Bearer ${conn.accessToken}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ complete: res.complete, body }));
      res.on('aborted', () => resolve({ aborted: true, body }));
      res.on('error', (e) => resolve({ error: e.code || e.message, body }));
    });
    req.on('error', (e) => resolve({ error: e.code || e.message }));
  });
  assert.ok(outcome.aborted || outcome.error || outcome.complete === false,
    `node:http read a complete response through reset_rate 1: ${JSON.stringify(outcome).slice(0, 300)}`);

  // jsforce 3.10.16 pipes the response body without forwarding its errors, so
  // a cut mid-body leaves its promise pending (a real network does the same
  // to it); it must at least never report success.
  const racing = await Promise.race([
    conn.sobject('Teacher__c').create(teacher()).then((r) => ({ ok: r }), (e) => ({ err: e })),
    lf.sleep(1500).then(() => ({ pending: true })),
  ]);
  assert.ok(!racing.ok, `jsforce got a result through a reset connection: ${JSON.stringify(racing.ok)}`);

  await lf.clearFaults(server);
  await assertHealthy('after DELETE');
});

test('offline: a request is never answered until offline is cleared, then completes', T, async () => {
  await lf.setFaults(server, { rules: [{ offline: true }] });
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 1000);
  const t0 = Date.now();
  const aborted = await fetch(server.url + lf.rest('/limits'), {
    headers: { authorization: `Bearer ${conn.accessToken}` }, signal: ac.signal,
  }).then((r) => `HTTP ${r.status}`, (e) => e);
  clearTimeout(timer);
  assert.equal(aborted?.name, 'AbortError', `an offline request was answered: ${aborted}`);
  assert.ok(Date.now() - t0 >= 900);

  // The admin API still answers while offline, and shows the parked request.
  const state = await lf.getFaults(server);
  assert.equal(state.rules[0].offline, true);

  // One more request waits, and completes once offline is cleared.
  let settled = false;
  const pending = get('/limits').finally(() => { settled = true; });
  await lf.sleep(300);
  assert.equal(settled, false, 'a request completed while offline');
  const cleared = Date.now();
  await lf.clearFaults(server);
  const res = await pending;
  assert.ok(res.status === 200 || res.status === 503, `a parked request after DELETE: ${res.status} ${res.text}`);
  assert.ok(Date.now() - cleared < 2000, `the parked request took ${Date.now() - cleared} ms after DELETE`);
  await assertHealthy('after DELETE');
});

test('api_budget N: N API calls succeed, the next gets REQUEST_LIMIT_EXCEEDED 403', T, async () => {
  await lf.setFaults(server, { rules: [{ api_budget: 3 }] });
  for (let i = 0; i < 3; i++) {
    const r = await conn.query(soql);
    assert.equal(r.totalSize, 1, `call ${i + 1} of a budget of 3`);
  }
  const err = await lf.catchError(() => conn.query(soql), 'the 4th call on a budget of 3');
  assert.equal(err.name, 'REQUEST_LIMIT_EXCEEDED', `${err.name}: ${err.message}`);
  const raw = await get('/sobjects');
  assert.equal(raw.status, 403, raw.text);
  assert.equal(raw.json?.[0]?.errorCode, 'REQUEST_LIMIT_EXCEEDED', raw.text);
  assert.match(raw.json[0].message, /TotalRequests Limit exceeded/);
  // The versions list is not an API call and still answers.
  const versions = await lf.http(server, '/services/data/');
  assert.equal(versions.status, 200);

  await lf.clearFaults(server);
  await assertHealthy('after DELETE');
});

test('lock_rate 1: writes fail with UNABLE_TO_LOCK_ROW, reads work', T, async () => {
  const existing = await conn.sobject('Teacher__c').create(teacher());
  await lf.setFaults(server, { rules: [{ lock_rate: 1 }] });
  const so = conn.sobject('Teacher__c');
  const c = await lf.catchError(() => so.create(teacher({ Name: tag('Locked') })), 'a create with lock_rate 1');
  assert.equal(c.name, 'UNABLE_TO_LOCK_ROW', `${c.name}: ${c.message}`);
  const u = await lf.catchError(() => so.update({ Id: existing.id, Salary__c: 1 }), 'an update with lock_rate 1');
  assert.equal(u.name, 'UNABLE_TO_LOCK_ROW');
  const d = await lf.catchError(() => so.destroy(existing.id), 'a delete with lock_rate 1');
  assert.equal(d.name, 'UNABLE_TO_LOCK_ROW');
  const raw = await lf.http(server, lf.rest('/sobjects/Teacher__c'), { token: conn.accessToken, body: teacher() });
  assert.equal(raw.status, 400, raw.text);
  assert.equal(raw.json?.[0]?.errorCode, 'UNABLE_TO_LOCK_ROW', raw.text);

  // Reads are untouched.
  assert.equal((await so.retrieve(existing.id)).Id, existing.id);
  assert.equal((await conn.query(soql)).totalSize, 1);
  assert.equal((await get('/limits')).status, 200);

  await lf.clearFaults(server);
  const n = await conn.query("SELECT COUNT() FROM Teacher__c WHERE Name LIKE 'Locked-%'");
  assert.equal(n.totalSize, 0, 'a locked create wrote a record');
  assert.equal((await so.retrieve(existing.id)).Salary__c, null, 'a locked update changed the record');
  const ok = await so.create(teacher());
  assert.equal(ok.success, true);
});

test('expire_sessions: the next call gets 401 INVALID_SESSION_ID, jsforce refreshes and carries on', T, async () => {
  const c = await lf.login(server);
  const stale = c.accessToken;
  let refreshed = 0;
  c.on('refresh', () => { refreshed += 1; });
  await lf.setFaults(server, { rules: [], expire_sessions: true });
  const raw = await lf.http(server, lf.rest('/limits'), { token: stale });
  assert.equal(raw.status, 401, raw.text);
  assert.equal(raw.json?.[0]?.errorCode, 'INVALID_SESSION_ID', raw.text);
  const r = await c.query(soql);
  assert.equal(r.totalSize, 1);
  assert.notEqual(c.accessToken, stale);
  assert.equal(refreshed, 1);
  // Expiry happens once: the new session keeps working.
  assert.equal((await c.query(soql)).totalSize, 1);
  assert.equal(refreshed, 1);
  // The suite's own connection was expired too, and refreshes the same way.
  assert.equal((await conn.query(soql)).totalSize, 1);
});

test('a path pattern limits a fault to matching paths', T, async () => {
  await lf.setFaults(server, { rules: [
    { latency_ms: 600, path: '/services/data/*/query*' },
    { error_rate: 1, status: 503, path: '/services/data/*/sobjects/Account*' },
  ] });
  const q = await timed(() => conn.query(soql));
  assert.ok(q.ms >= 600, `a query matching the pattern answered in ${q.ms.toFixed(0)} ms`);
  const lim = await timed(() => get('/limits'));
  assert.equal(lim.v.status, 200);
  assert.ok(lim.ms < 500, `/limits does not match the latency pattern but took ${lim.ms.toFixed(0)} ms`);

  const acct = await lf.catchError(() => conn.sobject('Account').create({ Name: tag('Pattern') }), 'an Account create');
  assert.equal(acct.name, 'SERVER_UNAVAILABLE');
  const t = await conn.sobject('Teacher__c').create(teacher());
  assert.equal(t.success, true, 'a Teacher__c create does not match the Account pattern');
  const d = await conn.describe('Teacher__c');
  assert.equal(d.name, 'Teacher__c');

  await lf.clearFaults(server);
  await assertHealthy('after DELETE');
  assert.equal((await conn.sobject('Account').create({ Name: tag('Pattern') })).success, true);
});

test('DELETE /admin/faults restores normal service at once, releasing parked and delayed requests', T, async () => {
  await lf.setFaults(server, { rules: [{ latency_ms: 20000 }, { offline: true, path: '/services/data/*/limits' }] });
  const started = Date.now();
  const delayed = Array.from({ length: 5 }, () => get('/sobjects'));
  const parked = Array.from({ length: 5 }, () => get('/limits'));
  await lf.waitFor(async () => {
    const s = await lf.getFaults(server);
    return !s.state || (s.state.parked + s.state.delayed) >= 10;
  }, { what: 'ten requests to be held by the faults' });
  await lf.clearFaults(server);
  const results = await Promise.all([...delayed, ...parked]);
  const took = Date.now() - started;
  for (const r of results) assert.ok(r.status === 200 || r.status === 503, `a released request: ${r.status} ${r.text.slice(0, 200)}`);
  assert.ok(took < 5000, `released requests took ${took} ms (latency was 20 s)`);
  await assertHealthy('after DELETE');
});

test('--faults at start-up: rules from the flag act at once, show in GET, and clear with DELETE', T, async () => {
  const spec = 'latency=300,jitter=0,path=/services/data/*/query*;error_rate=1,status=503,path=/services/data/*/sobjects/Account*';
  const s2 = await lf.startServer({ args: ['--faults', spec], env: SEED_ENV });
  try {
    const c2 = await lf.login(s2);
    const rules = (await lf.getFaults(s2)).rules;
    assert.equal(rules.length, 2, JSON.stringify(rules));
    assert.equal(rules[0].latency_ms, 300);
    assert.equal(rules[0].path, '/services/data/*/query*');
    assert.equal(rules[1].error_rate, 1);
    assert.equal(rules[1].status, 503);
    const q = await timed(() => c2.query(soql));
    assert.ok(q.ms >= 300, `query took ${q.ms.toFixed(0)} ms with --faults latency=300`);
    const e = await lf.catchError(() => c2.sobject('Account').create({ Name: tag('Flag') }), 'an Account create');
    assert.equal(e.name, 'SERVER_UNAVAILABLE');
    await lf.clearFaults(s2);
    const q2 = await timed(() => c2.query(soql));
    assert.ok(q2.ms < 300, `after DELETE a query took ${q2.ms.toFixed(0)} ms`);
    assert.equal((await c2.sobject('Account').create({ Name: tag('Flag') })).success, true);
  } finally {
    await s2.stop();
  }
  // A bad spec stops the server from starting, with a message.
  const err = await lf.catchError(() => lf.startServer({ args: ['--faults', 'latency=soon'] }), 'a bad --faults');
  assert.match(err.message, /exited \(code [1-9]/, err.message);
  assert.match(err.message, /faults/i);
});

test('LOCALFORCE_FAULTS_SEED: the same seed gives the same faults', T, async () => {
  const spec = 'error_rate=0.5,status=503';
  const pattern = async (srv) => {
    let out = '';
    for (let i = 0; i < 40; i++) out += (await lf.http(srv, '/services/data/')).status === 503 ? 'x' : '.';
    return out;
  };
  const [a, b] = await Promise.all([
    lf.startServer({ args: ['--faults', spec], env: { LOCALFORCE_FAULTS_SEED: '7' } }),
    lf.startServer({ args: ['--faults', spec], env: { LOCALFORCE_FAULTS_SEED: '7' } }),
  ]);
  try {
    const [pa, pb] = [await pattern(a), await pattern(b)];
    assert.equal(pa, pb, 'two servers with the same seed must inject the same faults');
    assert.match(pa, /x/);
    assert.match(pa, /\./);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('localforce exits 0 on SIGTERM', async () => {
  await server.stop();
});
