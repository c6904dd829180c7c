// CDC latency: run from the repo root as `node bench/cdc-latency.mjs` (N=300 samples; LOCALFORCE_BIN
// is relative to tests/compat and defaults to ../../build/localforce).
// CDC latency: commit -> event at a subscribed long-poll client (raw Bayeux over fetch).
import * as lf from '../tests/compat/lib/localforce.mjs';
import http from 'node:http';
const N = Number(process.env.N || 300);
const server = await lf.startServer({ env: { LOCALFORCE_COMETD_TIMEOUT_MS: '30000' } });
const conn = await lf.login(server);
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
function post(path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const u = new URL(server.url + path);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent,
      headers: { 'content-type': 'application/json', authorization: 'OAuth ' + conn.accessToken, 'content-length': Buffer.byteLength(data) } },
      (res) => { let t = ''; res.on('data', (c) => (t += c)); res.on('end', () => resolve(JSON.parse(t))); });
    req.on('error', reject); req.end(data);
  });
}
const hs = (await post('/cometd/59.0', [{ channel: '/meta/handshake', version: '1.0', id: '1' }]))[0];
const clientId = hs.clientId;
await post('/cometd/59.0', [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: '2' }]);
await post('/cometd/59.0', [{ channel: '/meta/subscribe', clientId, subscription: '/data/Teacher__ChangeEvent', id: '3' }]);
const so = conn.sobject('Teacher__c');
const lat = [], lat2 = [];
let id = 10;
for (let i = 0; i < N; i++) {
  const poll = post('/cometd/59.0', [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: String(id++) }]);
  await lf.sleep(2);
  const t0 = performance.now();
  const rec = so.create({ Name: `L${i}`, First_Name__c: 'Lat', Email__c: `l${i}.${process.pid}@lat.test` });
  const msgs = await poll;
  const t1 = performance.now();
  const ev = msgs.find((m) => m.channel === '/data/Teacher__ChangeEvent');
  if (!ev) { console.error('no event', msgs); process.exit(1); }
  lat.push(Date.now() - ev.data.payload.ChangeEventHeader.commitTimestamp);
  lat2.push(t1 - t0);
  await rec;
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const p = (a, q) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length * q)]; };
console.log(JSON.stringify({ n: N, commit_to_client_ms: { median: med(lat), p90: p(lat, 0.9), p99: p(lat, 0.99) },
  rest_call_start_to_event_ms: { median: +med(lat2).toFixed(2), p90: +p(lat2, 0.9).toFixed(2), p99: +p(lat2, 0.99).toFixed(2) } }));
agent.destroy();
await server.stop();
