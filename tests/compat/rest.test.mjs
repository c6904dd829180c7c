// The REST API as jsforce 3.x uses it: versions and resources, describe,
// record CRUD, upsert, query paging (autoFetch, queryMore, batch size),
// queryAll, relationships, replication (updated/deleted), sObject collections
// and API limits.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as lf from './lib/localforce.mjs';

let server;
let conn;
let seedId; // the fixture's "Seed School" Account

before(async () => {
  server = await lf.startServer();
  conn = await lf.login(server);
  const res = await conn.query("SELECT Id FROM Account WHERE External_Id__c = 'S-1'");
  assert.equal(res.totalSize, 1, 'the fixture\'s seed Account is missing');
  seedId = res.records[0].Id;
});

after(async () => {
  await server?.stop();
});

const DATETIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/;
let uniq = 0;
const tag = (p) => `${p}-${process.pid}-${++uniq}`;

function teacher(extra = {}) {
  const n = ++uniq;
  return { First_Name__c: `Teacher ${n}`, Email__c: `t${n}.${process.pid}@school.test`, ...extra };
}

test('GET /services/data/ lists the versions without authentication', async () => {
  const res = await lf.http(server, '/services/data/');
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^application\/json(;|$)/);
  assert.ok(Array.isArray(res.json), res.text);
  for (const v of res.json) {
    assert.match(v.version, /^\d+\.0$/);
    assert.equal(v.url, `/services/data/v${v.version}`);
    assert.equal(typeof v.label, 'string');
  }
  const versions = res.json.map((v) => v.version);
  for (const v of ['59.0', '60.0', '61.0', '62.0']) assert.ok(versions.includes(v), `missing ${v}`);
  assert.equal(res.headers.get('sforce-limit-info'), null, 'the versions list is not an API call');
});

test('GET /services/data/vNN.N is the resource map, with the identity URL', async () => {
  const res = await conn.request('/services/data/v59.0');
  for (const key of ['sobjects', 'query', 'queryAll', 'limits', 'composite']) {
    assert.equal(res[key], `/services/data/v59.0/${key}`, `resource ${key}`);
  }
  assert.equal(res.identity, conn.userInfo.url);
  // jsforce's default version (50.0) and others are served too.
  const old = await conn.request('/services/data/v50.0');
  assert.equal(old.sobjects, '/services/data/v50.0/sobjects');
});

test('a Connection on jsforce\'s default API version (50.0) works end to end', async () => {
  const c = new lf.jsforce.Connection({ oauth2: lf.oauth2Config(server) });
  await c.login(lf.ADMIN_USER, lf.ADMIN_PASS);
  assert.equal(c.version, '50.0');
  const so = c.sobject('Teacher__c');
  const r = await so.create(teacher());
  assert.equal(r.success, true);
  const rec = await so.retrieve(r.id);
  assert.equal(rec.attributes.url, `/services/data/v50.0/sobjects/Teacher__c/${r.id}`);
  const up = await so.upsert({ Email__c: rec.Email__c, Salary__c: 1 }, 'Email__c');
  assert.deepEqual([up.id, up.created], [r.id, false]);
  const q = await c.query(`SELECT Id FROM Teacher__c WHERE Id = '${r.id}'`);
  assert.equal(q.records[0].attributes.url, `/services/data/v50.0/sobjects/Teacher__c/${r.id}`);
  const many = await so.create([teacher(), teacher()]);
  assert.ok(many.every((x) => x.success), JSON.stringify(many));
});

test('describeGlobal lists Teacher__c with its key prefix', async () => {
  const res = await conn.describeGlobal();
  assert.equal(res.encoding, 'UTF-8');
  assert.equal(res.maxBatchSize, 200);
  const byName = Object.fromEntries(res.sobjects.map((s) => [s.name, s]));
  const t = byName.Teacher__c;
  assert.ok(t, `Teacher__c not in ${Object.keys(byName).join(', ')}`);
  assert.match(t.keyPrefix, /^a[0-9A-Za-z]{2}$/);
  assert.equal(t.label, 'Teacher');
  assert.equal(t.custom, true);
  assert.equal(t.queryable, true);
  assert.equal(t.createable, true);
  assert.equal(t.urls.sobject, `/services/data/v${conn.version}/sobjects/Teacher__c`);
  assert.equal(t.urls.describe, `/services/data/v${conn.version}/sobjects/Teacher__c/describe`);
  assert.equal(byName.Account.keyPrefix, '001');
  assert.equal(byName.Account.custom, false);
});

test('describe Teacher__c reports its fields', async () => {
  const d = await conn.describe('Teacher__c');
  assert.equal(d.name, 'Teacher__c');
  assert.equal(d.custom, true);
  assert.match(d.keyPrefix, /^a[0-9A-Za-z]{2}$/);
  const f = Object.fromEntries(d.fields.map((x) => [x.name, x]));
  for (const sys of ['Id', 'IsDeleted', 'Name', 'CreatedDate', 'CreatedById', 'LastModifiedDate',
    'LastModifiedById', 'SystemModstamp', 'OwnerId']) {
    assert.ok(f[sys], `system field ${sys} missing`);
  }
  assert.equal(d.fields[0].name, 'Id');

  assert.deepEqual(
    pick(f.Id, ['type', 'length', 'nillable', 'createable', 'updateable', 'idLookup']),
    { type: 'id', length: 18, nillable: false, createable: false, updateable: false, idLookup: true });
  assert.deepEqual(pick(f.Name, ['type', 'length', 'nameField']), { type: 'string', length: 80, nameField: true });
  assert.deepEqual(pick(f.CreatedDate, ['type', 'createable', 'updateable']),
    { type: 'datetime', createable: false, updateable: false });
  assert.deepEqual(pick(f.SystemModstamp, ['type', 'createable', 'updateable']),
    { type: 'datetime', createable: false, updateable: false });
  assert.deepEqual(pick(f.IsDeleted, ['type', 'createable', 'updateable']),
    { type: 'boolean', createable: false, updateable: false });
  assert.equal(f.OwnerId.type, 'reference');

  assert.deepEqual(
    pick(f.First_Name__c, ['type', 'length', 'nillable', 'createable', 'updateable', 'custom',
      'externalId', 'unique']),
    { type: 'string', length: 40, nillable: false, createable: true, updateable: true, custom: true,
      externalId: false, unique: false });
  assert.deepEqual(
    pick(f.Email__c, ['type', 'length', 'nillable', 'externalId', 'unique', 'idLookup']),
    { type: 'email', length: 80, nillable: true, externalId: true, unique: true, idLookup: true });
  assert.equal(f.Status__c.type, 'picklist');
  assert.equal(f.Status__c.restrictedPicklist, true);
  assert.deepEqual(f.Status__c.picklistValues.map((p) => [p.value, p.label, p.active]),
    [['Active', 'Active', true], ['On leave', 'On leave', true]]);
  assert.equal(f.Salary__c.type, 'currency');
  assert.equal(f.Hired__c.type, 'date');
  assert.equal(f.Active__c.type, 'boolean');
  assert.equal(f.Active__c.nillable, false, 'checkboxes are never null in Salesforce');
  assert.deepEqual(
    pick(f.School__c, ['type', 'referenceTo', 'relationshipName', 'nillable']),
    { type: 'reference', referenceTo: ['Account'], relationshipName: 'School__r', nillable: true });
  for (const fld of d.fields) {
    assert.deepEqual(fld.picklistValues !== undefined, true, `${fld.name} has no picklistValues`);
    assert.equal(typeof fld.soapType, 'string', `${fld.name} has no soapType`);
  }
});

function pick(obj, keys) {
  assert.ok(obj, 'field missing');
  return Object.fromEntries(keys.map((k) => [k, obj[k]]));
}

test('create, retrieve, update and destroy a record with jsforce\'s sobject API', async () => {
  const so = conn.sobject('Teacher__c');
  const created = await so.create(teacher({
    Name: 'Grace Hopper', Salary__c: 52000.5, Hired__c: '2021-09-01', Active__c: true,
    Status__c: 'Active', School__c: seedId,
  }));
  assert.equal(created.success, true);
  assert.deepEqual(created.errors, []);
  const id = created.id;

  const rec = await so.retrieve(id);
  assert.deepEqual(rec.attributes, { type: 'Teacher__c', url: `/services/data/v${conn.version}/sobjects/Teacher__c/${id}` });
  assert.equal(rec.Id, id);
  assert.equal(rec.Name, 'Grace Hopper');
  assert.equal(rec.Salary__c, 52000.5);
  assert.equal(rec.Hired__c, '2021-09-01');
  assert.equal(rec.Active__c, true);
  assert.equal(rec.Status__c, 'Active');
  assert.equal(rec.School__c, seedId);
  assert.equal(rec.IsDeleted, false);
  assert.equal(rec.OwnerId, conn.userInfo.id);
  assert.equal(rec.CreatedById, conn.userInfo.id);
  assert.equal(rec.LastModifiedById, conn.userInfo.id);
  assert.match(rec.CreatedDate, DATETIME_RE);
  assert.match(rec.LastModifiedDate, DATETIME_RE);
  assert.match(rec.SystemModstamp, DATETIME_RE);
  assert.ok(Math.abs(Date.parse(rec.CreatedDate.replace('+0000', 'Z')) - Date.now()) < 120000,
    `CreatedDate ${rec.CreatedDate} is not now`);

  const partial = await so.retrieve(id, { fields: ['Name', 'Salary__c'] });
  assert.equal(partial.Name, 'Grace Hopper');
  assert.equal(partial.Salary__c, 52000.5);
  assert.equal(partial.Hired__c, undefined, 'fields= should limit the fields returned');

  const upd = await so.update({ Id: id, Salary__c: 60000, Status__c: 'On leave', School__c: null });
  assert.deepEqual(upd, { id, success: true, errors: [] });
  const rec2 = await so.retrieve(id);
  assert.equal(rec2.Salary__c, 60000);
  assert.equal(rec2.Status__c, 'On leave');
  assert.equal(rec2.School__c, null);
  assert.equal(rec2.Name, 'Grace Hopper');
  assert.equal(rec2.CreatedDate, rec.CreatedDate);
  assert.ok(rec2.LastModifiedDate >= rec.LastModifiedDate);

  const del = await so.destroy(id);
  assert.deepEqual(del, { id, success: true, errors: [] });
  const err = await lf.catchError(() => so.retrieve(id), 'retrieve of a deleted record');
  assert.ok(['NOT_FOUND', 'ENTITY_IS_DELETED'].includes(err.name), `got ${err.name}: ${err.message}`);
});

test('the raw create/update/delete responses are 201 / 204 / 204', async () => {
  const token = conn.accessToken;
  const c = await lf.http(server, lf.rest('/sobjects/Account'), { token, body: { Name: tag('Raw') } });
  assert.equal(c.status, 201, c.text);
  assert.match(c.headers.get('content-type'), /^application\/json(;|$)/);
  assert.deepEqual(Object.keys(c.json).sort(), ['errors', 'id', 'success']);
  const u = await lf.http(server, lf.rest(`/sobjects/Account/${c.json.id}`), {
    method: 'PATCH', token, body: { Industry: 'Energy' },
  });
  assert.equal(u.status, 204, u.text);
  assert.equal(u.text, '');
  const d = await lf.http(server, lf.rest(`/sobjects/Account/${c.json.id}`), { method: 'DELETE', token });
  assert.equal(d.status, 204, d.text);
  assert.equal(d.text, '');
});

test('IDs are 18 characters with the object\'s prefix and a valid checksum; 15-char IDs work', async () => {
  const d = await conn.describe('Teacher__c');
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await conn.sobject('Teacher__c').create(teacher())).id);
  for (const id of ids) {
    assert.ok(lf.isValidSfid(id, d.keyPrefix), `bad Teacher__c id ${id} (prefix ${d.keyPrefix})`);
  }
  assert.equal(new Set(ids).size, ids.length);
  const acct = (await conn.sobject('Account').create({ Name: tag('Id check') })).id;
  assert.ok(lf.isValidSfid(acct, '001'), `bad Account id ${acct}`);
  assert.ok(lf.isValidSfid(seedId, '001'), `bad seed Account id ${seedId}`);

  // Check our checksum against Salesforce's documented example.
  assert.equal(lf.sfidChecksum('001D000000IRFma'), 'IAH');

  const rec = await conn.sobject('Teacher__c').retrieve(ids[0].slice(0, 15));
  assert.equal(rec.Id, ids[0]);
  const q = await conn.query(`SELECT Id FROM Teacher__c WHERE Id = '${ids[1].slice(0, 15)}'`);
  assert.equal(q.totalSize, 1);
  assert.equal(q.records[0].Id, ids[1]);
});

test('upsert by Email__c creates, then updates', async () => {
  const so = conn.sobject('Teacher__c');
  const email = `upsert.${process.pid}@school.test`;
  const r1 = await so.upsert({ Email__c: email, First_Name__c: 'Ida' }, 'Email__c');
  assert.equal(r1.success, true);
  assert.equal(r1.created, true);
  assert.ok(lf.isValidSfid(r1.id));
  const r2 = await so.upsert({ Email__c: email, First_Name__c: 'Ida B.' }, 'Email__c');
  assert.equal(r2.success, true);
  assert.equal(r2.created, false);
  assert.equal(r2.id, r1.id);
  const rec = await so.retrieve(r1.id);
  assert.equal(rec.First_Name__c, 'Ida B.');
  assert.equal(rec.Email__c, email);

  const token = conn.accessToken;
  const raw = await lf.http(server, lf.rest(`/sobjects/Teacher__c/Email__c/${encodeURIComponent(email)}`), {
    method: 'PATCH', token, body: { First_Name__c: 'Ida C.' },
  });
  assert.equal(raw.status, 200, raw.text);
  assert.deepEqual(raw.json, { id: r1.id, success: true, errors: [], created: false });
  const email2 = `upsert2.${process.pid}@school.test`;
  const raw2 = await lf.http(server, lf.rest(`/sobjects/Teacher__c/Email__c/${encodeURIComponent(email2)}`), {
    method: 'PATCH', token, body: { First_Name__c: 'Ida D.' },
  });
  assert.equal(raw2.status, 201, raw2.text);
  assert.equal(raw2.json.created, true);
  assert.equal((await so.retrieve(raw2.json.id)).Email__c, email2);
});

test('a parent can be set by its external ID', async () => {
  const r = await conn.sobject('Teacher__c').create(teacher({ School__r: { External_Id__c: 'S-1' } }));
  assert.equal(r.success, true);
  assert.equal((await conn.sobject('Teacher__c').retrieve(r.id)).School__c, seedId);
});

test('upsert matching two records -> 300 MULTIPLE_CHOICES', async () => {
  await lf.addField(server, 'Account', { name: 'Legacy_Id__c', type: 'string', length: 20, external_id: true });
  await lf.loadRecords(server, 'Account', [
    { Name: 'Twin A', Legacy_Id__c: 'DUP-1' },
    { Name: 'Twin B', Legacy_Id__c: 'DUP-1' },
  ]);
  const d = await conn.describe('Account');
  const legacy = d.fields.find((x) => x.name === 'Legacy_Id__c');
  assert.ok(legacy, 'the admin-added field is not in describe');
  assert.equal(legacy.externalId, true);
  assert.equal(legacy.unique, false);

  const err = await lf.catchError(
    () => conn.sobject('Account').upsert({ Legacy_Id__c: 'DUP-1', Name: 'Twin C' }, 'Legacy_Id__c'),
    'upsert on a duplicated external id');
  assert.equal(err.name, 'MULTIPLE_CHOICES', `${err.name}: ${err.message}`);
  assert.ok(Array.isArray(err.data) && err.data.length === 2, `300 body should list both matches: ${JSON.stringify(err.data)}`);

  const raw = await lf.http(server, lf.rest('/sobjects/Account/Legacy_Id__c/DUP-1'), {
    method: 'PATCH', token: conn.accessToken, body: { Name: 'Twin C' },
  });
  assert.equal(raw.status, 300, raw.text);
  const n = await conn.query("SELECT COUNT() FROM Account WHERE Legacy_Id__c = 'DUP-1'");
  assert.equal(n.totalSize, 2, 'a 300 must not change anything');
});

test('5,000 records: autoFetch with maxFetch, and queryMore by hand', async () => {
  const rows = [];
  for (let i = 0; i < 5000; i++) rows.push({ Name: `Bulk ${String(i).padStart(4, '0')}`, Industry: 'Energy' });
  await lf.loadRecords(server, 'Account', rows);
  const q = "SELECT Id, Name FROM Account WHERE Name LIKE 'Bulk %'";

  const all = await conn.query(q, { autoFetch: true, maxFetch: 10000 });
  assert.equal(all.totalSize, 5000);
  assert.equal(all.records.length, 5000);
  assert.equal(all.done, true);
  assert.equal(new Set(all.records.map((r) => r.Id)).size, 5000);
  assert.equal(new Set(all.records.map((r) => r.Name)).size, 5000);

  const capped = await conn.query(q, { autoFetch: true, maxFetch: 3000 });
  assert.equal(capped.totalSize, 5000);
  assert.equal(capped.records.length, 3000);

  // By hand: pages of 2,000, 2,000 and 1,000.
  const p1 = await conn.query(q);
  assert.equal(p1.totalSize, 5000);
  assert.equal(p1.done, false);
  assert.equal(p1.records.length, 2000);
  assert.match(p1.nextRecordsUrl, /\/services\/data\/v[\d.]+\/query\/[^/]+$/);
  const p2 = await conn.queryMore(p1.nextRecordsUrl);
  assert.equal(p2.records.length, 2000);
  assert.equal(p2.done, false);
  assert.equal(p2.totalSize, 5000);
  const p3 = await conn.queryMore(p2.nextRecordsUrl);
  assert.equal(p3.records.length, 1000);
  assert.equal(p3.done, true);
  assert.equal(p3.nextRecordsUrl, undefined);
  const ids = new Set([...p1.records, ...p2.records, ...p3.records].map((r) => r.Id));
  assert.equal(ids.size, 5000);
});

test('the raw query pages: exact keys, locator URLs, Sforce-Query-Options batchSize=500', async () => {
  const token = conn.accessToken;
  const q = encodeURIComponent("SELECT Id, Name FROM Account WHERE Name LIKE 'Bulk %'");
  const first = await lf.http(server, lf.rest(`/query?q=${q}`), { token });
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(Object.keys(first.json).sort(), ['done', 'nextRecordsUrl', 'records', 'totalSize']);
  assert.match(first.json.nextRecordsUrl, /^\/services\/data\/v59\.0\/query\/[0-9A-Za-z]+-2000$/);
  assert.deepEqual(Object.keys(first.json.records[0]).sort(), ['Id', 'Name', 'attributes']);
  assert.deepEqual(first.json.records[0].attributes,
    { type: 'Account', url: `/services/data/v59.0/sobjects/Account/${first.json.records[0].Id}` });

  const headers = { 'Sforce-Query-Options': 'batchSize=500' };
  let page = await lf.http(server, lf.rest(`/query?q=${q}`), { token, headers });
  assert.equal(page.status, 200, page.text);
  const seen = new Set();
  let pages = 0;
  for (;;) {
    pages += 1;
    assert.equal(page.json.totalSize, 5000);
    for (const r of page.json.records) seen.add(r.Id);
    if (page.json.done) {
      assert.deepEqual(Object.keys(page.json).sort(), ['done', 'records', 'totalSize']);
      break;
    }
    assert.equal(page.json.records.length, 500, `page ${pages} has ${page.json.records.length} records`);
    assert.ok(pages < 20, 'too many pages');
    page = await lf.http(server, page.json.nextRecordsUrl, { token, headers });
    assert.equal(page.status, 200, page.text);
  }
  assert.equal(pages, 10);
  assert.equal(seen.size, 5000);
});

test('queryAll returns a deleted record with IsDeleted = true; query does not', async () => {
  const so = conn.sobject('Teacher__c');
  const { id } = await so.create(teacher());
  await so.destroy(id);
  const q = `SELECT Id, IsDeleted FROM Teacher__c WHERE Id = '${id}'`;
  const live = await conn.query(q);
  assert.equal(live.totalSize, 0);
  const all = await conn.query(q, { scanAll: true });
  assert.equal(all.totalSize, 1);
  assert.equal(all.records[0].Id, id);
  assert.equal(all.records[0].IsDeleted, true);

  const raw = await lf.http(server, lf.rest(`/queryAll?q=${encodeURIComponent(q)}`), { token: conn.accessToken });
  assert.equal(raw.status, 200, raw.text);
  assert.equal(raw.json.records[0].IsDeleted, true);
});

test('a queryAll cursor continues through /query/{locator} and still includes deleted rows', async () => {
  const rows = [];
  for (let i = 0; i < 2100; i++) rows.push({ First_Name__c: `QA ${i}`, Email__c: `qa${i}.${process.pid}@school.test` });
  await lf.loadRecords(server, 'Teacher__c', rows);
  const q = "SELECT Id FROM Teacher__c WHERE First_Name__c LIKE 'QA %'";
  const some = await conn.query(q + ' LIMIT 10');
  await conn.sobject('Teacher__c').destroy(some.records.map((r) => r.Id));

  const live = await conn.query(q, { autoFetch: true });
  assert.equal(live.totalSize, 2090);
  assert.equal(live.records.length, 2090);
  const all = await conn.query(q, { autoFetch: true, scanAll: true });
  assert.equal(all.totalSize, 2100);
  assert.equal(all.records.length, 2100);
});

test('parent relationship fields (School__r.Name) come back as nested records', async () => {
  const so = conn.sobject('Teacher__c');
  const withSchool = (await so.create(teacher({ First_Name__c: 'Rel One', School__c: seedId }))).id;
  const without = (await so.create(teacher({ First_Name__c: 'Rel Two' }))).id;
  const res = await conn.query(
    `SELECT Id, First_Name__c, School__r.Name, School__r.External_Id__c FROM Teacher__c ` +
    `WHERE Id IN ('${withSchool}', '${without}') ORDER BY First_Name__c`);
  assert.equal(res.totalSize, 2);
  const [a, b] = res.records;
  assert.equal(a.Id, withSchool);
  assert.equal(a.School__r.attributes.type, 'Account');
  assert.equal(a.School__r.attributes.url, `/services/data/v${conn.version}/sobjects/Account/${seedId}`);
  assert.equal(a.School__r.Name, 'Seed School');
  assert.equal(a.School__r.External_Id__c, 'S-1');
  assert.equal(b.Id, without);
  assert.equal(b.School__r, null);

  const filtered = await conn.query(
    "SELECT Id FROM Teacher__c WHERE School__r.External_Id__c = 'S-1' AND First_Name__c = 'Rel One'");
  assert.equal(filtered.totalSize, 1);
  assert.equal(filtered.records[0].Id, withSchool);
});

test('SOQL: canonical key case, escaping, Unicode, filters and date literals', async () => {
  const lower = await conn.query("select id, name, external_id__c from account where external_id__c = 's-1'");
  assert.equal(lower.totalSize, 1, 'external id matching is case-insensitive by default');
  assert.deepEqual(Object.keys(lower.records[0]).sort(), ['External_Id__c', 'Id', 'Name', 'attributes']);

  const marker = tag('Soql');
  const so = conn.sobject('Account');
  await so.create([
    { Name: `${marker} O'Brien Ltd`, Industry: 'Energy' },
    { Name: `${marker} 学校 🎒 Ünïcødé`, Industry: 'Education' },
    { Name: `${marker} back\\slash` },
  ]);
  const obrien = await so.findOne({ Name: `${marker} O'Brien Ltd` }, ['Id', 'Name']);
  assert.equal(obrien?.Name, `${marker} O'Brien Ltd`);
  const esc = await conn.query(`SELECT Name FROM Account WHERE Name LIKE '${marker} o\\'b%'`);
  assert.deepEqual(esc.records.map((r) => r.Name), [`${marker} O'Brien Ltd`], 'LIKE is case-insensitive');
  const uni = await conn.query(`SELECT Name FROM Account WHERE Name = '${marker} 学校 🎒 Ünïcødé'`);
  assert.deepEqual(uni.records.map((r) => r.Name), [`${marker} 学校 🎒 Ünïcødé`]);
  const bs = await conn.query(`SELECT Name FROM Account WHERE Name = '${marker} back\\\\slash'`);
  assert.deepEqual(bs.records.map((r) => r.Name), [`${marker} back\\slash`]);

  const inList = await conn.query(
    `SELECT Name FROM Account WHERE Name LIKE '${marker}%' AND Industry IN ('Energy', 'Education') ORDER BY Name`);
  assert.equal(inList.totalSize, 2);
  const notIn = await conn.query(`SELECT Name FROM Account WHERE Name LIKE '${marker}%' AND Industry NOT IN ('Energy')`);
  assert.equal(notIn.totalSize, 2, 'NOT IN keeps rows whose value is null');
  const isNull = await conn.query(`SELECT Name FROM Account WHERE Name LIKE '${marker}%' AND Industry = null`);
  assert.deepEqual(isNull.records.map((r) => r.Name), [`${marker} back\\slash`]);
  const notNull = await conn.query(`SELECT COUNT() FROM Account WHERE Name LIKE '${marker}%' AND Industry != null`);
  assert.equal(notNull.totalSize, 2);
  // What jsforce's query builder makes of $or, $nlike, $exists and $not.
  const orNot = await so.find({ Name: { $like: `${marker}%` },
    $or: [{ Industry: 'Energy' }, { Name: { $nlike: '%slash' } }] }, ['Name']);
  assert.equal(orNot.length, 2);
  const exists = await so.find({ Name: { $like: `${marker}%` }, Industry: { $exists: true } }, ['Name']);
  assert.equal(exists.length, 2);
  const not = await conn.query(`SELECT COUNT() FROM Account WHERE NOT Name LIKE '${marker}%'`);
  const all = await conn.query('SELECT COUNT() FROM Account');
  assert.equal(not.totalSize, all.totalSize - 3);

  // Dates and datetimes are unquoted literals; relative literals work.
  for (const where of ['CreatedDate > 2020-01-01T00:00:00Z', 'CreatedDate > 2020-01-01T00:00:00.000+01:00',
    'CreatedDate = TODAY', 'CreatedDate = LAST_N_DAYS:2', 'CreatedDate < 2999-01-01T00:00:00Z']) {
    const r = await conn.query(`SELECT COUNT() FROM Account WHERE Name LIKE '${marker}%' AND ${where}`);
    assert.equal(r.totalSize, 3, where);
  }
  const none = await conn.query(`SELECT COUNT() FROM Account WHERE Name LIKE '${marker}%' AND CreatedDate = YESTERDAY`);
  assert.equal(none.totalSize, 0);
});

test('SOQL: booleans, numbers, dates and NULLS FIRST/LAST ordering', async () => {
  const marker = tag('Vals');
  await conn.sobject('Teacher__c').create([
    teacher({ Name: `${marker} a`, Salary__c: 300, Active__c: true, Hired__c: '2019-05-01' }),
    teacher({ Name: `${marker} b`, Salary__c: 100, Active__c: false, Hired__c: '2021-01-15' }),
    teacher({ Name: `${marker} c`, Active__c: true }),
  ]);
  const base = `FROM Teacher__c WHERE Name LIKE '${marker}%'`;
  const names = async (rest) => (await conn.query(`SELECT Name ${base} ${rest}`)).records.map((r) => r.Name.slice(-1));
  assert.deepEqual(await names('AND Active__c = true ORDER BY Name'), ['a', 'c']);
  assert.deepEqual(await names('AND Active__c = false'), ['b']);
  assert.deepEqual(await names('AND Salary__c > 150'), ['a']);
  assert.deepEqual(await names('AND Salary__c >= 100 AND Salary__c <= 300 ORDER BY Salary__c'), ['b', 'a']);
  assert.deepEqual(await names('AND Hired__c < 2020-01-01'), ['a']);
  assert.deepEqual(await names('ORDER BY Salary__c'), ['c', 'b', 'a'], 'ascending puts nulls first');
  assert.deepEqual(await names('ORDER BY Salary__c DESC NULLS LAST'), ['a', 'b', 'c']);
  assert.deepEqual(await names('ORDER BY Salary__c ASC NULLS LAST'), ['b', 'a', 'c']);
  assert.deepEqual(await names('ORDER BY Salary__c DESC NULLS FIRST'), ['c', 'a', 'b']);
  const typed = await conn.query(`SELECT Salary__c, Active__c, Hired__c, CreatedDate ${base} AND Name LIKE '%a'`);
  const r = typed.records[0];
  assert.equal(r.Salary__c, 300);
  assert.equal(r.Active__c, true);
  assert.equal(r.Hired__c, '2019-05-01');
  assert.match(r.CreatedDate, DATETIME_RE);
});

test('datetime input in any ISO 8601 offset comes back in UTC as +0000', async () => {
  await lf.addField(server, 'Teacher__c', { name: 'Last_Seen__c', type: 'datetime' });
  const so = conn.sobject('Teacher__c');
  const cases = [
    ['2024-01-02T03:04:05Z', '2024-01-02T03:04:05.000+0000'],
    ['2024-01-02T04:04:05+01:00', '2024-01-02T03:04:05.000+0000'],
    ['2024-01-01T22:04:05.250-05:00', '2024-01-02T03:04:05.250+0000'],
    ['2024-01-02T03:04:05.123+0000', '2024-01-02T03:04:05.123+0000'],
  ];
  for (const [input, output] of cases) {
    const { id } = await so.create(teacher({ Last_Seen__c: input }));
    assert.equal((await so.retrieve(id)).Last_Seen__c, output, input);
  }
  const q = await conn.query('SELECT COUNT() FROM Teacher__c WHERE Last_Seen__c = 2024-01-02T03:04:05Z');
  assert.equal(q.totalSize, 2);
});

test('parent paths through standard relationships (Owner, CreatedBy) and the User object', async () => {
  const res = await conn.query(
    "SELECT Owner.Name, CreatedBy.Username, LastModifiedBy.Email FROM Account WHERE External_Id__c = 'S-1'");
  const r = res.records[0];
  assert.equal(r.Owner.attributes.type, 'User');
  assert.equal(r.Owner.Name, 'Ada Admin');
  assert.equal(r.CreatedBy.Username, lf.ADMIN_USER);
  assert.equal(r.LastModifiedBy.Email, 'admin@compat.test');
  const users = await conn.query('SELECT Id, Name, Username FROM User');
  assert.deepEqual(users.records.map((u) => [u.Id, u.Name, u.Username]),
    [[conn.userInfo.id, 'Ada Admin', lf.ADMIN_USER]]);
});

test('parallel writes get distinct IDs and all land', async () => {
  const marker = tag('Parallel');
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
    conn.sobject('Account').create({ Name: `${marker} ${i}` })));
  assert.equal(new Set(results.map((r) => r.id)).size, 40);
  const n = await conn.query(`SELECT COUNT() FROM Account WHERE Name LIKE '${marker}%'`);
  assert.equal(n.totalSize, 40);
});

test('upsert with updateOnly=true (API 61.0+) never inserts', async () => {
  const token = conn.accessToken;
  const email = `update.only.${process.pid}@school.test`;
  const miss = await lf.http(server, lf.rest(`/sobjects/Teacher__c/Email__c/${encodeURIComponent(email)}?updateOnly=true`, '62.0'),
    { method: 'PATCH', token, body: { First_Name__c: 'Nobody' } });
  assert.equal(miss.status, 404, `updateOnly upsert of a missing record: ${miss.status} ${miss.text}`);
  assert.equal(typeof miss.json?.[0]?.errorCode, 'string', miss.text);
  const n = await conn.query(`SELECT COUNT() FROM Teacher__c WHERE Email__c = '${email}'`);
  assert.equal(n.totalSize, 0, 'updateOnly=true created a record');
  const { id } = await conn.sobject('Teacher__c').create({ First_Name__c: 'Some', Email__c: email });
  const hit = await lf.http(server, lf.rest(`/sobjects/Teacher__c/Email__c/${encodeURIComponent(email)}?updateOnly=true`, '62.0'),
    { method: 'PATCH', token, body: { First_Name__c: 'Somebody' } });
  assert.equal(hit.status, 200, hit.text);
  assert.deepEqual(hit.json, { id, success: true, errors: [], created: false });
});

test('SELECT COUNT() answers in totalSize with no records', async () => {
  const marker = tag('Count');
  await conn.sobject('Account').create([1, 2, 3, 4, 5, 6, 7].map((i) => ({ Name: `${marker} ${i}` })));
  const res = await conn.query(`SELECT COUNT() FROM Account WHERE Name LIKE '${marker}%'`);
  assert.equal(res.totalSize, 7);
  assert.equal(res.done, true);
  assert.deepEqual(res.records, []);
  assert.equal(await conn.sobject('Account').count({ Name: { $like: `${marker}%` } }), 7);
});

test('ORDER BY, LIMIT and OFFSET', async () => {
  const marker = tag('Order');
  const names = Array.from({ length: 30 }, (_, i) => `${marker} ${String(i).padStart(2, '0')}`);
  const shuffled = [...names].sort(() => Math.random() - 0.5);
  await lf.loadRecords(server, 'Account', shuffled.map((Name, i) => ({ Name, Industry: i % 2 ? 'Energy' : 'Education' })));

  const res = await conn.query(
    `SELECT Name FROM Account WHERE Name LIKE '${marker}%' ORDER BY Name DESC LIMIT 5 OFFSET 3`);
  assert.equal(res.totalSize, 5);
  assert.deepEqual(res.records.map((r) => r.Name), [...names].reverse().slice(3, 8));

  const asc = await conn.query(`SELECT Name FROM Account WHERE Name LIKE '${marker}%' ORDER BY Name LIMIT 4`);
  assert.deepEqual(asc.records.map((r) => r.Name), names.slice(0, 4));

  // Two sort keys (a text field, then Name descending).
  const groups = await lf.loadRecords(server, 'Teacher__c', names.map((Name, i) => ({
    Name, First_Name__c: i % 3 === 0 ? 'Alpha' : 'Beta', Email__c: `${i}.${marker}@order.test`,
  })));
  assert.equal(groups, 30);
  const two = await conn.query(
    `SELECT Name, First_Name__c FROM Teacher__c WHERE Name LIKE '${marker}%' ORDER BY First_Name__c ASC, Name DESC LIMIT 4`);
  const alpha = names.filter((_, i) => i % 3 === 0).reverse();
  assert.deepEqual(two.records.map((r) => r.Name), alpha.slice(0, 4));
  const beta = await conn.query(
    `SELECT Name FROM Teacher__c WHERE Name LIKE '${marker}%' ORDER BY First_Name__c DESC, Name ASC LIMIT 2 OFFSET 1`);
  assert.deepEqual(beta.records.map((r) => r.Name), names.filter((_, i) => i % 3 !== 0).slice(1, 3));

  // jsforce's query builder produces the same SOQL shapes.
  const built = await conn.sobject('Account')
    .find({ Name: { $like: `${marker}%` } }, ['Name'])
    .sort({ Name: -1 }).limit(2).skip(1);
  assert.deepEqual(built.map((r) => r.Name), [...names].reverse().slice(1, 3));
});

test('sobject updated() and deleted() report changes once their minute has passed', async () => {
  const start = new Date(Date.now() - 5 * 60 * 1000);
  const so = conn.sobject('Teacher__c');
  const kept = (await so.create(teacher())).id;
  const gone = (await so.create(teacher())).id;
  await so.destroy(gone);
  const stamp = Date.parse((await so.retrieve(kept)).SystemModstamp.replace('+0000', 'Z'));
  // Salesforce truncates the window to whole minutes and covers no time after
  // now: a change shows up once its minute is over. Wait for that.
  const nextMinute = Math.floor(Date.now() / 60000) * 60000 + 60000;
  await new Promise((r) => setTimeout(r, nextMinute - Date.now() + 500));
  const end = new Date(Date.now() + 2 * 60 * 1000);

  const upd = await so.updated(start, end);
  assert.ok(Array.isArray(upd.ids), JSON.stringify(upd));
  assert.ok(upd.ids.includes(kept), `updated() misses a record created in the window: ${JSON.stringify(upd)}`);
  assert.match(upd.latestDateCovered, DATETIME_RE);
  assert.ok(Date.parse(upd.latestDateCovered.replace('+0000', 'Z')) > stamp);
  assert.ok(Date.parse(upd.latestDateCovered.replace('+0000', 'Z')) <= Date.now());

  const del = await so.deleted(start, end);
  assert.ok(Array.isArray(del.deletedRecords), JSON.stringify(del));
  const entry = del.deletedRecords.find((r) => r.id === gone);
  assert.ok(entry, `deleted() misses a record deleted in the window: ${JSON.stringify(del)}`);
  assert.match(entry.deletedDate, DATETIME_RE);
  assert.ok(!del.deletedRecords.some((r) => r.id === kept));
  assert.match(del.earliestDateAvailable, DATETIME_RE);
  assert.match(del.latestDateCovered, DATETIME_RE);

  // A window that ends before start is refused.
  const bad = await lf.catchError(() => so.updated(end, start), 'updated() with end before start');
  assert.match(bad.name, /^[A-Z_]+$/, `not a Salesforce error: ${bad.name}: ${bad.message}`);
});

test('collections: create 10 with one failing (allOrNone false) -> per-record errors', async () => {
  const marker = tag('Coll');
  const recs = Array.from({ length: 10 }, (_, i) => teacher({ Name: `${marker} ${i}` }));
  delete recs[4].First_Name__c;
  const res = await conn.sobject('Teacher__c').create(recs);
  assert.equal(res.length, 10);
  res.forEach((r, i) => {
    if (i === 4) {
      assert.equal(r.success, false);
      assert.equal(r.errors.length, 1);
      assert.equal(r.errors[0].statusCode, 'REQUIRED_FIELD_MISSING', JSON.stringify(r));
      assert.deepEqual(r.errors[0].fields, ['First_Name__c']);
      assert.equal(typeof r.errors[0].message, 'string');
    } else {
      assert.equal(r.success, true, JSON.stringify(r));
      assert.deepEqual(r.errors, []);
      assert.ok(lf.isValidSfid(r.id));
    }
  });
  const n = await conn.query(`SELECT COUNT() FROM Teacher__c WHERE Name LIKE '${marker}%'`);
  assert.equal(n.totalSize, 9);
});

test('collections: allOrNone true -> all fail, ALL_OR_NONE_OPERATION_ROLLED_BACK, nothing created', async () => {
  const marker = tag('AllOrNone');
  const recs = Array.from({ length: 10 }, (_, i) => teacher({ Name: `${marker} ${i}` }));
  delete recs[6].First_Name__c;
  const res = await conn.sobject('Teacher__c').create(recs, { allOrNone: true });
  assert.equal(res.length, 10);
  res.forEach((r, i) => {
    assert.equal(r.success, false, JSON.stringify(r));
    assert.equal(r.errors[0].statusCode,
      i === 6 ? 'REQUIRED_FIELD_MISSING' : 'ALL_OR_NONE_OPERATION_ROLLED_BACK', JSON.stringify(r));
  });
  const n = await conn.query(`SELECT COUNT() FROM Teacher__c WHERE Name LIKE '${marker}%'`);
  assert.equal(n.totalSize, 0);
});

test('collections: update many, upsert many, destroy many', async () => {
  const marker = tag('Many');
  const so = conn.sobject('Teacher__c');
  const recs = Array.from({ length: 10 }, (_, i) => teacher({ Name: `${marker} ${i}`, Salary__c: 1000 }));
  const created = await so.create(recs);
  assert.ok(created.every((r) => r.success), JSON.stringify(created));
  const ids = created.map((r) => r.id);

  const upd = await so.update(ids.map((Id, i) => ({ Id, Salary__c: 2000 + i })));
  assert.deepEqual(upd.map((r) => [r.id, r.success]), ids.map((id) => [id, true]));
  const after1 = await conn.query(`SELECT Id, Salary__c FROM Teacher__c WHERE Name LIKE '${marker}%' ORDER BY Salary__c`);
  assert.deepEqual(after1.records.map((r) => r.Salary__c), ids.map((_, i) => 2000 + i));

  // Upsert: two existing (by Email__c), three new.
  const ups = await so.upsert([
    { Email__c: recs[0].Email__c, Active__c: true },
    { Email__c: recs[1].Email__c, Active__c: true },
    teacher({ Name: `${marker} new 1` }),
    teacher({ Name: `${marker} new 2` }),
    teacher({ Name: `${marker} new 3` }),
  ], 'Email__c');
  assert.deepEqual(ups.map((r) => [r.success, r.created]),
    [[true, false], [true, false], [true, true], [true, true], [true, true]]);
  assert.equal(ups[0].id, ids[0]);
  assert.equal(ups[1].id, ids[1]);
  assert.equal((await so.retrieve(ids[0])).Active__c, true);

  const all = [...ids, ...ups.slice(2).map((r) => r.id)];
  const del = await so.destroy(all);
  assert.deepEqual(del.map((r) => [r.id, r.success]), all.map((id) => [id, true]));
  const n = await conn.query(`SELECT COUNT() FROM Teacher__c WHERE Name LIKE '${marker}%'`);
  assert.equal(n.totalSize, 0);

  // Retrieve many (POST /composite/sobjects/{type}).
  const keep = await so.create([teacher({ Name: `${marker} r1` }), teacher({ Name: `${marker} r2` })]);
  const got = await conn.retrieve('Teacher__c', keep.map((r) => r.id), { fields: ['Id', 'Name'] });
  assert.deepEqual(got.map((r) => r.Name), [`${marker} r1`, `${marker} r2`]);
});

test('conn.limits() and the Sforce-Limit-Info header', async () => {
  const limits = await conn.limits();
  assert.equal(limits.DailyApiRequests.Max, 100000);
  assert.ok(limits.DailyApiRequests.Remaining <= 100000);
  assert.ok(limits.DailyApiRequests.Remaining > 0);

  const u1 = conn.limitInfo.apiUsage;
  assert.ok(u1, 'jsforce saw no Sforce-Limit-Info header');
  assert.equal(u1.limit, 100000);
  assert.ok(u1.used > 0);
  await conn.query('SELECT Id FROM Account LIMIT 1');
  const u2 = conn.limitInfo.apiUsage;
  assert.ok(u2.used > u1.used, `api-usage did not grow: ${u1.used} -> ${u2.used}`);

  const raw = await lf.http(server, lf.rest('/limits'), { token: conn.accessToken });
  assert.match(raw.headers.get('sforce-limit-info'), /^api-usage=\d+\/100000/);
  const used = Number(/api-usage=(\d+)/.exec(raw.headers.get('sforce-limit-info'))[1]);
  const spent = raw.json.DailyApiRequests.Max - raw.json.DailyApiRequests.Remaining;
  assert.ok(Math.abs(spent - used) <= 1, `limits says ${spent} used, Sforce-Limit-Info says ${used}`);
});

test('localforce exits 0 on SIGTERM', async () => {
  await server.stop();
});
