// The Streaming API as jsforce 3.x (faye, long polling) and a raw Bayeux
// client see it: handshake / connect / subscribe with Salesforce's advice and
// errors, Change Data Capture events for changes made through REST, replay
// (-1, -2, a replay id, invalid ids), PushTopics created through REST, and the
// --cdc-gap-events and --cdc-retention start-up options.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { StreamingExtension } from 'jsforce/lib/api/streaming.js';
import * as lf from './lib/localforce.mjs';

// Long polls are held this long instead of Salesforce's 110 s.
const COMETD_TIMEOUT_MS = 3000;
const ENV = { LOCALFORCE_COMETD_TIMEOUT_MS: String(COMETD_TIMEOUT_MS) };
const TEACHER_CH = '/data/Teacher__ChangeEvent';
const ALL_CH = '/data/ChangeEvents';
// CDC payload datetimes are ISO 8601 UTC with a Z.
const CDC_DATETIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/;

// No test may hang the run, whatever the server does.
const T = { timeout: 60000 };

let server;
let conn;
const clients = new Set(); // faye clients still open, closed in after()

before(async () => {
  server = await lf.startServer({ env: ENV });
  conn = await lf.login(server);
});

after(async () => {
  for (const c of clients) await closeClient(c);
  await server?.stop();
});

let uniq = 0;
const tag = (p) => `${p}-${process.pid}-${++uniq}`;
function teacher(marker, extra = {}) {
  const n = ++uniq;
  return { Name: `${marker} ${n}`, First_Name__c: `Stream ${n}`, Email__c: `s${n}.${process.pid}@stream.test`, ...extra };
}

// Every event any client saw, per server and channel: replayId -> data.
const seen = new Map();
function remember(srv, channel, data) {
  const key = `${srv.url} ${channel}`;
  if (!seen.has(key)) seen.set(key, new Map());
  const id = data?.event?.replayId;
  if (typeof id === 'number') seen.get(key).set(id, data);
}

const header = (e) => e.data?.payload?.ChangeEventHeader ?? {};
const isChange = (type, id) => (e) => header(e).changeType === type && (header(e).recordIds || []).includes(id);

/**
 * A jsforce streaming client (conn.streaming.createClient with the Replay
 * extension) subscribed to channel from replayId, collecting events.
 */
function openClient(srv, c, channel, replayId) {
  const replay = new StreamingExtension.Replay(channel, replayId);
  const client = c.streaming.createClient([replay]);
  clients.add(client);
  const events = [];
  const sub = client.subscribe(channel);
  sub.withChannel((ch, data) => {
    events.push({ channel: ch, data });
    remember(srv, ch, data);
  });
  return {
    client,
    events,
    subscribed: () => subscribedWithin(sub, `the subscription to ${channel} from ${replayId}`),
    waitFor: (pred, what, timeoutMs = 15000) =>
      lf.waitFor(() => events.find(pred), { timeoutMs, intervalMs: 10, what: `${what} on ${channel}` }),
    close: () => closeClient(client),
  };
}

/** A faye subscription's outcome: resolves when acknowledged, rejects with its error or after 15 s. */
function subscribedWithin(sub, what, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} was not acknowledged within ${timeoutMs} ms`)), timeoutMs);
    sub.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

/**
 * Disconnect a faye client (/meta/disconnect when connected), then stop it
 * for good: no more handshake retries or resent messages, in-flight polls
 * aborted, so a failing test cannot keep the process alive.
 */
async function closeClient(client) {
  if (!clients.has(client)) return;
  clients.delete(client);
  const done = client._state === client.CONNECTED ? client.disconnect() : undefined;
  if (done && typeof done.then === 'function') {
    // The acknowledgement is not needed for correctness; don't hang on it.
    await Promise.race([new Promise((resolve) => done.then(resolve, resolve)), lf.sleep(3000)]);
  }
  client._advice.reconnect = 'none';
  client._state = client.DISCONNECTED;
  const d = client._dispatcher;
  for (const env of d._envelopes.values()) {
    clearTimeout(env.timer);
    if (env.request && typeof env.request.then === 'function') env.request.then((req) => req?.abort?.());
  }
  d._envelopes.clear();
  d.close();
}

/** POST a Bayeux message array to /cometd/59.0 (or path) with fetch. */
async function bayeux(srv, messages, opts = {}) {
  const headers = { 'content-type': 'application/json' };
  if (opts.token !== null) headers.authorization = `OAuth ${opts.token ?? conn.accessToken}`;
  const res = await fetch(srv.url + (opts.path ?? '/cometd/59.0'), {
    method: 'POST', headers, body: typeof messages === 'string' ? messages : JSON.stringify(messages), signal: opts.signal,
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

function reply(res, channel, id) {
  assert.equal(res.status, 200, `${channel}: HTTP ${res.status} ${res.text.slice(0, 500)}`);
  assert.match(res.headers.get('content-type') || '', /^application\/json(;|$)/);
  assert.ok(Array.isArray(res.json), `${channel}: the answer is not a JSON array: ${res.text.slice(0, 500)}`);
  const m = res.json.find((x) => x.channel === channel && (id === undefined || x.id === id));
  assert.ok(m, `no ${channel} reply with id ${id} in ${res.text.slice(0, 1000)}`);
  return m;
}

async function handshake(srv, opts = {}) {
  const res = await bayeux(srv, [{ channel: '/meta/handshake', version: '1.0',
    supportedConnectionTypes: ['long-polling'], id: '1' }], opts);
  const m = reply(res, '/meta/handshake', '1');
  assert.equal(m.successful, true, res.text);
  return m;
}

async function assertAlive(srv = server, c = conn) {
  const res = await lf.http(srv, lf.rest('/limits'), { token: c.accessToken });
  assert.equal(res.status, 200, `the server stopped serving: ${res.status} ${res.text.slice(0, 200)}`);
}

test('raw Bayeux: handshake, first connect with advice, subscribe while a connect is held, an event ends the poll', T, async () => {
  const hs = await handshake(server);
  assert.equal(hs.version, '1.0');
  assert.equal(typeof hs.clientId, 'string');
  assert.ok(hs.clientId.length > 0);
  assert.ok(hs.supportedConnectionTypes.includes('long-polling'), JSON.stringify(hs));
  assert.equal(hs.ext?.replay, true, 'ext.replay:true turns on jsforce\'s Replay extension');
  const clientId = hs.clientId;

  let t0 = Date.now();
  const first = await bayeux(server, [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: '2' }]);
  const c1 = reply(first, '/meta/connect', '2');
  assert.ok(Date.now() - t0 < COMETD_TIMEOUT_MS / 2, 'the first connect after a handshake is answered at once');
  assert.equal(c1.successful, true, first.text);
  assert.equal(c1.clientId, clientId);
  assert.deepEqual(c1.advice, { interval: 0, timeout: COMETD_TIMEOUT_MS, reconnect: 'retry' });

  // faye disables batching: the next connect is parked while subscribe arrives on another request.
  const held = bayeux(server, [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: '3' }]);
  t0 = Date.now();
  const sub = await bayeux(server, [{ channel: '/meta/subscribe', clientId, subscription: TEACHER_CH, id: '4',
    ext: { replay: { [TEACHER_CH]: -1 } } }]);
  assert.ok(Date.now() - t0 < COMETD_TIMEOUT_MS / 2, 'subscribe is not held behind the parked connect');
  const s = reply(sub, '/meta/subscribe', '4');
  assert.equal(s.successful, true, sub.text);
  assert.equal(s.subscription, TEACHER_CH);
  assert.equal(s.clientId, clientId);

  const marker = tag('Raw');
  const created = Date.now();
  const { id } = await conn.sobject('Teacher__c').create(teacher(marker));
  const res = await held;
  assert.ok(Date.now() - created < COMETD_TIMEOUT_MS - 500,
    `the held connect came back ${Date.now() - created} ms after the change, not at once`);
  const ev = res.json?.find((x) => x.channel === TEACHER_CH);
  assert.ok(ev, `no ${TEACHER_CH} event in the held connect's answer: ${res.text.slice(0, 1000)}`);
  remember(server, ev.channel, ev.data);
  assert.equal(ev.data.payload.ChangeEventHeader.changeType, 'CREATE');
  assert.deepEqual(ev.data.payload.ChangeEventHeader.recordIds, [id]);
  assert.equal(typeof ev.data.event.replayId, 'number');
  assert.equal(typeof ev.data.schema, 'string');
  const c3 = reply(res, '/meta/connect', '3');
  assert.equal(c3.successful, true);

  // /meta/unsubscribe mirrors subscribe; /meta/disconnect forgets the client.
  const un = await bayeux(server, [{ channel: '/meta/unsubscribe', clientId, subscription: TEACHER_CH, id: '5' }]);
  const u = reply(un, '/meta/unsubscribe', '5');
  assert.equal(u.successful, true, un.text);
  assert.equal(u.subscription, TEACHER_CH);
  const bye = await bayeux(server, [{ channel: '/meta/disconnect', clientId, id: '6' }]);
  assert.equal(reply(bye, '/meta/disconnect', '6').successful, true, bye.text);
  const after1 = await bayeux(server, [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: '7' }]);
  const gone = reply(after1, '/meta/connect', '7');
  assert.equal(gone.successful, false);
  assert.equal(gone.error, '403::Unknown client');
});

test('raw Bayeux: an unknown clientId gets 403::Unknown client with reconnect advice "handshake"', T, async () => {
  for (const [channel, extra] of [
    ['/meta/connect', { connectionType: 'long-polling' }],
    ['/meta/subscribe', { subscription: TEACHER_CH }],
    ['/meta/unsubscribe', { subscription: TEACHER_CH }],
  ]) {
    const res = await bayeux(server, [{ channel, clientId: 'nosuchclient0000000000000', id: '9', ...extra }]);
    const m = reply(res, channel, '9');
    assert.equal(m.successful, false, res.text);
    assert.equal(m.error, '403::Unknown client', res.text);
    if (channel === '/meta/connect') assert.equal(m.advice?.reconnect, 'handshake', res.text);
  }
});

test('raw Bayeux: an idle connect is held for the advised timeout; Java-style /cometd/59.0/{type} paths work', T, async () => {
  const hs = await handshake(server, { path: '/cometd/59.0/handshake' });
  const clientId = hs.clientId;
  const first = await bayeux(server, [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: '2' }],
    { path: '/cometd/59.0/connect' });
  assert.equal(reply(first, '/meta/connect', '2').successful, true);
  const t0 = Date.now();
  const idle = await bayeux(server, [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: '3' }],
    { path: '/cometd/59.0/connect' });
  const waited = Date.now() - t0;
  const m = reply(idle, '/meta/connect', '3');
  assert.equal(m.successful, true, idle.text);
  assert.ok(waited >= COMETD_TIMEOUT_MS - 250, `an idle connect returned after ${waited} ms, before the ${COMETD_TIMEOUT_MS} ms timeout`);
  assert.ok(waited < COMETD_TIMEOUT_MS + 3000, `an idle connect was held ${waited} ms`);
  // The client is still known after a held poll ended.
  const sub = await bayeux(server, [{ channel: '/meta/subscribe', clientId, subscription: ALL_CH, id: '4',
    ext: { replay: { [ALL_CH]: -1 } } }], { path: '/cometd/59.0/subscribe' });
  assert.equal(reply(sub, '/meta/subscribe', '4').successful, true, sub.text);
  await bayeux(server, [{ channel: '/meta/disconnect', clientId, id: '5' }]);
});

test('raw Bayeux: no or bad auth, malformed bodies, unknown channels and vanished clients are handled cleanly', T, async () => {
  for (const token of [null, '00Dbogus!token']) {
    const res = await bayeux(server, [{ channel: '/meta/handshake', version: '1.0',
      supportedConnectionTypes: ['long-polling'], id: '1' }], { token });
    if (res.status === 200) {
      const m = reply(res, '/meta/handshake', '1');
      assert.equal(m.successful, false, res.text);
      assert.equal(m.error, '403::Handshake denied', res.text);
      assert.equal(m.advice?.reconnect, 'none', res.text);
    } else {
      assert.equal(res.status, 401, `handshake with token ${token}: ${res.status} ${res.text.slice(0, 300)}`);
    }
  }
  for (const body of ['not json', '{"channel": "/meta/handshake"', '[1, 2, 3]', '[{"id": "1"}]', '"x"']) {
    const res = await bayeux(server, body);
    assert.ok(res.status === 400 || (res.status === 200 && Array.isArray(res.json) &&
      res.json.every((m) => m.successful === false)), `body ${JSON.stringify(body)}: ${res.status} ${res.text.slice(0, 300)}`);
  }
  const big = await bayeux(server, [{ channel: '/meta/handshake', version: '1.0', id: '1', ext: { pad: 'x'.repeat(40000) } }]);
  assert.ok(big.status === 413 || big.status === 400, `a 40 KB Bayeux body: ${big.status} ${big.text.slice(0, 300)}`);

  // Subscribing to a channel that does not exist fails that subscription.
  const hs = await handshake(server);
  await bayeux(server, [{ channel: '/meta/connect', clientId: hs.clientId, connectionType: 'long-polling', id: '2' }]);
  for (const ch of ['/topic/NoSuchTopic', '/data/Nope__ChangeEvent']) {
    const res = await bayeux(server, [{ channel: '/meta/subscribe', clientId: hs.clientId, subscription: ch, id: '3' }]);
    const m = reply(res, '/meta/subscribe', '3');
    assert.equal(m.successful, false, `${ch}: ${res.text}`);
    assert.equal(typeof m.error, 'string');
  }
  // A replay map that does not name the channel.
  const noMap = await bayeux(server, [{ channel: '/meta/subscribe', clientId: hs.clientId, subscription: TEACHER_CH,
    id: '4', ext: { replay: {} } }]);
  const nm = reply(noMap, '/meta/subscribe', '4');
  assert.equal(nm.successful, false, noMap.text);
  assert.match(nm.error, /^400::The replayId for channel \{\/data\/Teacher__ChangeEvent\} wasn't found/, nm.error);

  // A client that vanishes mid-poll: the server carries on and still delivers to others.
  const sub = await bayeux(server, [{ channel: '/meta/subscribe', clientId: hs.clientId, subscription: TEACHER_CH,
    id: '5', ext: { replay: { [TEACHER_CH]: -1 } } }]);
  assert.equal(reply(sub, '/meta/subscribe', '5').successful, true, sub.text);
  for (let i = 0; i < 5; i++) {
    const ac = new AbortController();
    const poll = bayeux(server, [{ channel: '/meta/connect', clientId: hs.clientId, connectionType: 'long-polling',
      id: `p${i}` }], { signal: ac.signal }).catch((e) => e);
    await lf.sleep(100);
    ac.abort();
    assert.equal((await poll).name, 'AbortError');
  }
  const watcher = openClient(server, conn, TEACHER_CH, -1);
  await watcher.subscribed();
  const { id } = await conn.sobject('Teacher__c').create(teacher(tag('Vanish')));
  await watcher.waitFor(isChange('CREATE', id), 'the CREATE after a client vanished');
  await watcher.close();
  await assertAlive();
});

test('jsforce streaming sees CDC CREATE, UPDATE and DELETE for REST changes, with the ChangeEventHeader', T, async () => {
  const c = openClient(server, conn, TEACHER_CH, -1);
  await c.subscribed();
  const so = conn.sobject('Teacher__c');
  const marker = tag('Cdc');
  const rec = teacher(marker, { Salary__c: 1000, Hired__c: '2021-09-01', Active__c: true });
  const t0 = Date.now();
  const { id } = await so.create(rec);
  const create = await c.waitFor(isChange('CREATE', id), 'CREATE');
  await so.update({ Id: id, Salary__c: 2500, Hired__c: null });
  const update = await c.waitFor(isChange('UPDATE', id), 'UPDATE');
  await so.destroy(id);
  const del = await c.waitFor(isChange('DELETE', id), 'DELETE');

  for (const e of [create, update, del]) {
    assert.equal(e.channel, TEACHER_CH);
    const h = header(e);
    assert.equal(h.entityName, 'Teacher__c');
    assert.deepEqual(h.recordIds, [id]);
    assert.equal(typeof h.transactionKey, 'string');
    assert.ok(h.transactionKey.length > 0);
    assert.equal(h.sequenceNumber, 1);
    assert.equal(typeof h.commitTimestamp, 'number');
    assert.ok(h.commitTimestamp >= t0 - 5000 && h.commitTimestamp <= Date.now() + 5000,
      `commitTimestamp ${h.commitTimestamp} is not now`);
    assert.equal(typeof h.commitNumber, 'number');
    assert.equal(h.commitUser, conn.userInfo.id);
    assert.match(h.changeOrigin, /^com\/salesforce\/api\/rest\/59\.0(;|$)/, h.changeOrigin);
    assert.ok(Array.isArray(h.changedFields), JSON.stringify(h));
    assert.equal(typeof e.data.schema, 'string');
    assert.equal(typeof e.data.event.replayId, 'number');
    assert.ok(!('IsDeleted' in e.data.payload) && !('SystemModstamp' in e.data.payload),
      `IsDeleted and SystemModstamp are never in a change event: ${JSON.stringify(e.data.payload)}`);
  }
  assert.ok(create.data.event.replayId < update.data.event.replayId);
  assert.ok(update.data.event.replayId < del.data.event.replayId);
  assert.equal(new Set([create, update, del].map((e) => header(e).transactionKey)).size, 3);

  // CREATE carries the record's non-null fields.
  const p = create.data.payload;
  assert.deepEqual(header(create).changedFields, []);
  assert.equal(p.Name, rec.Name);
  assert.equal(p.First_Name__c, rec.First_Name__c);
  assert.equal(p.Email__c, rec.Email__c);
  assert.equal(p.Salary__c, 1000);
  assert.equal(p.Hired__c, '2021-09-01');
  assert.equal(p.Active__c, true);
  assert.equal(p.OwnerId, conn.userInfo.id);
  assert.equal(p.CreatedById, conn.userInfo.id);
  assert.match(p.CreatedDate, CDC_DATETIME_RE);
  assert.match(p.LastModifiedDate, CDC_DATETIME_RE);

  // UPDATE carries only what changed.
  const u = update.data.payload;
  const changed = header(update).changedFields;
  for (const f of ['Salary__c', 'Hired__c', 'LastModifiedDate']) assert.ok(changed.includes(f), `${f} not in changedFields ${JSON.stringify(changed)}`);
  for (const f of ['First_Name__c', 'Email__c', 'Name']) assert.ok(!changed.includes(f), `${f} is in changedFields ${JSON.stringify(changed)}`);
  assert.equal(u.Salary__c, 2500);
  assert.match(u.LastModifiedDate, CDC_DATETIME_RE);
  assert.equal(u.First_Name__c, undefined, 'an UPDATE event carries only the changed fields');
  assert.equal(u.Email__c, undefined);

  // DELETE carries the header only.
  assert.deepEqual(Object.keys(del.data.payload), ['ChangeEventHeader']);
  await c.close();
});

test('/data/ChangeEvents carries changes to every object, from single-record and collection calls', T, async () => {
  const c = openClient(server, conn, ALL_CH, -1);
  await c.subscribed();
  const acct = await conn.sobject('Account').create({ Name: tag('Acct') });
  const coll = await conn.sobject('Teacher__c').create([teacher(tag('Coll')), teacher(tag('Coll'))]);
  assert.ok(coll.every((r) => r.success), JSON.stringify(coll));
  const a = await c.waitFor(isChange('CREATE', acct.id), 'the Account CREATE');
  assert.equal(a.channel, ALL_CH);
  assert.equal(header(a).entityName, 'Account');
  for (const r of coll) {
    const e = await c.waitFor(isChange('CREATE', r.id), `the CREATE of ${r.id}`);
    assert.equal(header(e).entityName, 'Teacher__c');
  }
  await conn.sobject('Account').update({ Id: acct.id, Industry: 'Energy' });
  const up = await c.waitFor(isChange('UPDATE', acct.id), 'the Account UPDATE');
  assert.ok(header(up).changedFields.includes('Industry'), JSON.stringify(header(up)));
  assert.equal(up.data.payload.Industry, 'Energy');
  await c.close();
});

test('changeOrigin names the REST API version and the Sforce-Call-Options client', T, async () => {
  const tagged = new lf.jsforce.Connection({
    oauth2: lf.oauth2Config(server), loginUrl: server.url, version: '59.0', callOptions: { client: 'compat-sync' },
  });
  await tagged.login(lf.ADMIN_USER, lf.ADMIN_PASS);
  const c = openClient(server, conn, TEACHER_CH, -1);
  await c.subscribed();
  const { id } = await tagged.sobject('Teacher__c').create(teacher(tag('Origin')));
  const e = await c.waitFor(isChange('CREATE', id), 'CREATE');
  assert.equal(header(e).changeOrigin, 'com/salesforce/api/rest/59.0;client=compat-sync');
  await c.close();
});

test('reconnecting with the last replay id receives exactly the events missed while away', T, async () => {
  const so = conn.sobject('Teacher__c');
  const a = openClient(server, conn, TEACHER_CH, -1);
  await a.subscribed();
  const before1 = await so.create(teacher(tag('Before')));
  await a.waitFor(isChange('CREATE', before1.id), 'CREATE before the disconnect');
  const last = Math.max(...a.events.map((e) => e.data.event.replayId));
  await a.close();

  // Changes while no client is connected.
  const m1 = await so.create(teacher(tag('Missed')));
  await so.update({ Id: m1.id, Salary__c: 77 });
  const m2 = await so.create(teacher(tag('Missed')));
  await so.destroy(m1.id);
  await conn.sobject('Account').create({ Name: tag('Other channel') });

  const b = openClient(server, conn, TEACHER_CH, last);
  await b.subscribed();
  await b.waitFor(isChange('DELETE', m1.id), 'the last missed event');
  const fence = await so.create(teacher(tag('Fence')));
  await b.waitFor(isChange('CREATE', fence.id), 'the CREATE after the reconnect');
  assert.deepEqual(b.events.map((e) => [header(e).changeType, header(e).recordIds[0]]), [
    ['CREATE', m1.id], ['UPDATE', m1.id], ['CREATE', m2.id], ['DELETE', m1.id], ['CREATE', fence.id],
  ], 'the missed events, once each and in order, then the new one');
  const ids = b.events.map((e) => e.data.event.replayId);
  assert.ok(ids.every((id) => id > last), `replayIds ${ids} must all be after ${last}`);
  assert.deepEqual([...ids].sort((x, y) => x - y), ids);
  await b.close();
});

test('replay -2 delivers every retained event, in replayId order, once', T, async () => {
  const known = seen.get(`${server.url} ${TEACHER_CH}`);
  assert.ok(known && known.size >= 5, 'earlier tests should have seen Teacher__c events');
  const maxKnown = Math.max(...known.keys());
  const minKnown = Math.min(...known.keys());
  const c = openClient(server, conn, TEACHER_CH, -2);
  await c.subscribed();
  await c.waitFor((e) => e.data.event.replayId === maxKnown, `replayId ${maxKnown}`);
  const ids = c.events.map((e) => e.data.event.replayId);
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `replayIds out of order or repeated: ${ids}`);
  for (const id of known.keys()) assert.ok(ids.includes(id), `retained event ${id} was not replayed`);
  assert.ok(ids[0] <= minKnown);
  for (const e of c.events) {
    const seenBefore = known.get(e.data.event.replayId);
    if (seenBefore) assert.deepEqual(e.data, seenBefore, `replayed event ${e.data.event.replayId} differs`);
  }
  await c.close();
});

test('an invalid replay id fails the subscription with Salesforce\'s 400 error', T, async () => {
  const c = openClient(server, conn, TEACHER_CH, -7);
  const err = await lf.catchError(() => c.subscribed(), 'subscribe with replayId -7');
  assert.match(String(err?.message), /^400::The replayId \{-7\} you provided was invalid/, String(err?.message));
  await c.close();
});

test('a PushTopic created through REST delivers created and updated events on /topic/{Name}', T, async () => {
  const name = `CompatT${process.pid % 100000}`;
  const topic = await conn.sobject('PushTopic').create({
    Name: name,
    Query: 'SELECT Id, Name, First_Name__c, Salary__c FROM Teacher__c WHERE Salary__c > 1000',
    ApiVersion: 59.0,
    NotifyForFields: 'Referenced',
  });
  assert.equal(topic.success, true, JSON.stringify(topic));
  assert.ok(lf.isValidSfid(topic.id, '0IF'), `PushTopic id ${topic.id}`);
  const got = await conn.query(`SELECT Id, Name, Query, ApiVersion, NotifyForFields, NotifyForOperationCreate FROM PushTopic WHERE Name = '${name}'`);
  assert.equal(got.totalSize, 1);
  assert.equal(got.records[0].ApiVersion, 59);
  assert.equal(got.records[0].NotifyForOperationCreate, true, 'operations default to on');

  const bad = await lf.catchError(() => conn.sobject('PushTopic').create({
    Name: `${name}x`, Query: 'SELECT Id FRM Teacher__c', ApiVersion: 59.0,
  }), 'a PushTopic with a malformed query');
  assert.match(bad.name, /^[A-Z_]+$/, `${bad.name}: ${bad.message}`);

  // jsforce's topic API (no replay extension: new events only).
  const events = [];
  const sub = conn.streaming.topic(name).subscribe((m) => events.push(m));
  try {
    await subscribedWithin(sub, `the subscription to /topic/${name}`);
    const so = conn.sobject('Teacher__c');
    const rec1 = teacher(tag('Topic'), { Salary__c: 2000 });
    const t1 = await so.create(rec1);
    const t2 = await so.create(teacher(tag('Topic'), { Salary__c: 500 }));  // does not match WHERE
    await lf.waitFor(() => events.find((m) => m.sobject?.Id === t1.id), { what: 'the created event', timeoutMs: 15000 });
    await so.update({ Id: t1.id, First_Name__c: 'Renamed' });
    await so.update({ Id: t1.id, Hired__c: '2020-02-02' });               // not a referenced field
    await so.update({ Id: t2.id, First_Name__c: 'Still too cheap' });     // still does not match
    await so.update({ Id: t1.id, Salary__c: 3000 });
    await lf.waitFor(() => events.find((m) => m.sobject?.Id === t1.id && m.sobject.Salary__c === 3000),
      { what: 'the last updated event', timeoutMs: 15000 });
    assert.deepEqual(events.map((m) => [m.event.type, m.sobject.Id, m.sobject.First_Name__c, m.sobject.Salary__c]), [
      ['created', t1.id, rec1.First_Name__c, 2000],
      ['updated', t1.id, 'Renamed', 2000],
      ['updated', t1.id, 'Renamed', 3000],
    ]);
    for (const m of events) {
      assert.equal(typeof m.event.replayId, 'number');
      assert.match(m.event.createdDate, CDC_DATETIME_RE);
      assert.deepEqual(Object.keys(m.sobject).sort(), ['First_Name__c', 'Id', 'Name', 'Salary__c']);
    }
  } finally {
    const fc = conn.streaming._fayeClients?.pushTopic;
    if (fc) { clients.add(fc); await closeClient(fc); }
  }
});

test('--cdc-gap-events: GAP_CREATE, GAP_UPDATE and GAP_DELETE carry only the header', T, async () => {
  const gap = await lf.startServer({ args: ['--cdc-gap-events'], env: ENV });
  try {
    const gconn = await lf.login(gap);
    const c = openClient(gap, gconn, TEACHER_CH, -1);
    await c.subscribed();
    const so = gconn.sobject('Teacher__c');
    const { id } = await so.create(teacher(tag('Gap')));
    await so.update({ Id: id, Salary__c: 5 });
    await so.destroy(id);
    for (const type of ['GAP_CREATE', 'GAP_UPDATE', 'GAP_DELETE']) {
      const e = await c.waitFor(isChange(type, id), type);
      assert.deepEqual(Object.keys(e.data.payload), ['ChangeEventHeader'], `${type} carries only the header`);
      assert.equal(header(e).entityName, 'Teacher__c');
      assert.equal(typeof e.data.event.replayId, 'number');
    }
    assert.ok(!c.events.some((e) => ['CREATE', 'UPDATE', 'DELETE'].includes(header(e).changeType)),
      'no full events when GAP events are on');
    await c.close();
  } finally {
    await gap.stop();
  }
});

test('--cdc-retention 0: live events flow, replay from an old replay id is refused', T, async () => {
  const nr = await lf.startServer({ args: ['--cdc-retention', '0'], env: ENV });
  try {
    const nconn = await lf.login(nr);
    const so = nconn.sobject('Teacher__c');
    const a = openClient(nr, nconn, TEACHER_CH, -1);
    await a.subscribed();
    const { id } = await so.create(teacher(tag('NoRet')));
    const e = await a.waitFor(isChange('CREATE', id), 'the live CREATE');
    const old = e.data.event.replayId;
    await a.close();
    await so.create(teacher(tag('NoRet')));

    const b = openClient(nr, nconn, TEACHER_CH, old);
    const err = await lf.catchError(() => b.subscribed(), `subscribe from replayId ${old} with no retention`);
    assert.match(String(err?.message), new RegExp(`^400::The replayId \\{${old}\\} you provided was invalid`), String(err?.message));
    await b.close();

    // -2 is allowed but has nothing retained to replay.
    const c = openClient(nr, nconn, TEACHER_CH, -2);
    await c.subscribed();
    const fence = await so.create(teacher(tag('NoRet fence')));
    await c.waitFor(isChange('CREATE', fence.id), 'the CREATE after subscribing');
    assert.deepEqual(c.events.map((x) => header(x).recordIds[0]), [fence.id], 'nothing is retained for replay');
    await c.close();
  } finally {
    await nr.stop();
  }
});

test('localforce exits 0 on SIGTERM', async () => {
  for (const c of clients) await closeClient(c);
  await server.stop();
});
