// Errors as jsforce reports them (err.name is Salesforce's errorCode), and
// hostile input sent with fetch and raw sockets: the server must answer with
// Salesforce's error, never crash or hang, and keep serving others.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import * as lf from './lib/localforce.mjs';

let server;
let conn;
let seedId;

before(async () => {
  server = await lf.startServer();
  conn = await lf.login(server);
  seedId = (await conn.query("SELECT Id FROM Account WHERE External_Id__c = 'S-1'")).records[0].Id;
});

after(async () => {
  await server?.stop();
});

let uniq = 0;
function teacher(extra = {}) {
  const n = ++uniq;
  return { First_Name__c: `Err ${n}`, Email__c: `err${n}.${process.pid}@school.test`, ...extra };
}

/** The jsforce error of fn, checked to be a Salesforce error with this code. */
async function sfError(fn, code, what) {
  const err = await lf.catchError(fn, what ?? code);
  assert.equal(err.name, code, `expected ${code}, got ${err.name}: ${err.message}`);
  assert.equal(err.errorCode, code);
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length > 0, 'empty error message');
  return err;
}

/** The server still answers a normal request. */
async function assertAlive() {
  const res = await lf.http(server, lf.rest('/limits'), { token: conn.accessToken });
  assert.equal(res.status, 200, `the server stopped serving: ${res.status} ${res.text.slice(0, 200)}`);
}

function assertErrorBody(res, status, code) {
  assert.equal(res.status, status, `${res.status} ${res.text.slice(0, 500)}`);
  assert.match(res.headers.get('content-type') || '', /^application\/json(;|$)/);
  assert.ok(Array.isArray(res.json) && res.json.length >= 1, `not an error array: ${res.text.slice(0, 500)}`);
  if (code) assert.equal(res.json[0].errorCode, code, res.text.slice(0, 500));
  assert.equal(typeof res.json[0].message, 'string');
}

test('MALFORMED_QUERY carries "ERROR at Row:1:Column:"', async () => {
  const err = await sfError(() => conn.query('SELECT Id FRM Account'), 'MALFORMED_QUERY');
  assert.match(err.message, /ERROR at Row:1:Column:\d+/);
  await sfError(() => conn.query('SELECT FROM Account'), 'MALFORMED_QUERY');
  await sfError(() => conn.query("SELECT Id FROM Account WHERE Name = 'unterminated"), 'MALFORMED_QUERY');
  await sfError(() => conn.query('SELECT Id FROM Account LIMIT'), 'MALFORMED_QUERY');
});

test('INVALID_FIELD in a query and in DML', async () => {
  const err = await sfError(() => conn.query('SELECT Id, Nope__c FROM Account'), 'INVALID_FIELD');
  assert.match(err.message, /No such column 'Nope__c' on entity 'Account'/);
  assert.match(err.message, /ERROR at Row:1:Column:12/);
  await sfError(() => conn.query('SELECT Id FROM Teacher__c WHERE Nope__c = 1'), 'INVALID_FIELD');
  await sfError(() => conn.query('SELECT School__r.Nope__c FROM Teacher__c'), 'INVALID_FIELD');
  const dml = await sfError(() => conn.sobject('Account').create({ Name: 'X', Nope__c: 1 }), 'INVALID_FIELD');
  assert.match(dml.message, /Nope__c/);
});

test('INVALID_TYPE for an unknown object in SOQL', async () => {
  const err = await sfError(() => conn.query('SELECT Id FROM Nope__c'), 'INVALID_TYPE');
  assert.match(err.message, /sObject type 'Nope__c' is not supported/);
});

test('REQUIRED_FIELD_MISSING names the field', async () => {
  const err = await sfError(() => conn.sobject('Teacher__c').create({ Email__c: 'req@school.test' }),
    'REQUIRED_FIELD_MISSING');
  assert.match(err.message, /First_Name__c/);
  assert.deepEqual(err.data.fields, ['First_Name__c']);
  // Clearing a required field on update is the same error.
  const { id } = await conn.sobject('Teacher__c').create(teacher());
  await sfError(() => conn.sobject('Teacher__c').update({ Id: id, First_Name__c: null }), 'REQUIRED_FIELD_MISSING');
});

test('DUPLICATE_VALUE on a unique field (case-insensitive by default)', async () => {
  const t = teacher();
  const first = await conn.sobject('Teacher__c').create(t);
  const err = await sfError(() => conn.sobject('Teacher__c').create(teacher({ Email__c: t.Email__c })),
    'DUPLICATE_VALUE');
  assert.match(err.message, /duplicate value found/);
  assert.ok(err.message.includes(first.id), `the message should name the existing record: ${err.message}`);
  await sfError(() => conn.sobject('Teacher__c').create(teacher({ Email__c: t.Email__c.toUpperCase() })),
    'DUPLICATE_VALUE');
  await sfError(() => conn.sobject('Account').create({ Name: 'Dup', External_Id__c: 'S-1' }), 'DUPLICATE_VALUE');
});

test('STRING_TOO_LONG', async () => {
  const err = await sfError(() => conn.sobject('Teacher__c').create(teacher({ First_Name__c: 'x'.repeat(41) })),
    'STRING_TOO_LONG');
  assert.deepEqual(err.data.fields, ['First_Name__c']);
  // 40 characters fit, and length counts characters, not bytes.
  const ok = await conn.sobject('Teacher__c').create(teacher({ First_Name__c: 'é'.repeat(40) }));
  assert.equal(ok.success, true);
  assert.equal((await conn.sobject('Teacher__c').retrieve(ok.id)).First_Name__c, 'é'.repeat(40));
});

test('INVALID_EMAIL_ADDRESS', async () => {
  const err = await sfError(() => conn.sobject('Teacher__c').create(teacher({ Email__c: 'not an email' })),
    'INVALID_EMAIL_ADDRESS');
  assert.deepEqual(err.data.fields, ['Email__c']);
});

test('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', async () => {
  const err = await sfError(() => conn.sobject('Teacher__c').create(teacher({ Status__c: 'Retired' })),
    'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST');
  assert.match(err.message, /Retired/);
  assert.deepEqual(err.data.fields, ['Status__c']);
  // An unrestricted picklist takes any value.
  const ok = await conn.sobject('Account').create({ Name: 'Picklist', Industry: 'Agriculture' });
  assert.equal(ok.success, true);
});

test('MALFORMED_ID for a lookup that is not an ID', async () => {
  await sfError(() => conn.sobject('Teacher__c').create(teacher({ School__c: 'not-an-id' })), 'MALFORMED_ID');
  await sfError(() => conn.sobject('Teacher__c').create(teacher({ School__c: '001abc' })), 'MALFORMED_ID');
  const { id } = await conn.sobject('Teacher__c').create(teacher());
  await sfError(() => conn.sobject('Teacher__c').update({ Id: id, School__c: '0015e00000-bad' }), 'MALFORMED_ID');
});

test('FIELD_INTEGRITY_EXCEPTION for a lookup to the wrong kind of record', async () => {
  const other = await conn.sobject('Teacher__c').create(teacher());
  const err = await sfError(() => conn.sobject('Teacher__c').create(teacher({ School__c: other.id })),
    'FIELD_INTEGRITY_EXCEPTION');
  assert.match(err.message, /id value of incorrect type/);
});

test('NOT_FOUND for an unknown object and an unknown record', async () => {
  await sfError(() => conn.sobject('Nope__c').create({ Name: 'x' }), 'NOT_FOUND');
  await sfError(() => conn.describe('Nope__c'), 'NOT_FOUND');
  const { id } = await conn.sobject('Account').create({ Name: 'Soon gone' });
  // A well-formed Account ID that was never issued.
  const missing = id.slice(0, 5) + 'zzzzzzzzzz';
  await sfError(() => conn.sobject('Account').retrieve(missing + lf.sfidChecksum(missing)), 'NOT_FOUND');
  // An unknown external-ID field in an upsert URL.
  await sfError(() => conn.sobject('Account').upsert({ Nope__c: 'x', Name: 'y' }, 'Nope__c'), 'NOT_FOUND');
});

test('ENTITY_IS_DELETED when updating or deleting a deleted record', async () => {
  const { id } = await conn.sobject('Account').create({ Name: 'Deleted twice' });
  await conn.sobject('Account').destroy(id);
  await sfError(() => conn.sobject('Account').destroy(id), 'ENTITY_IS_DELETED');
  await sfError(() => conn.sobject('Account').update({ Id: id, Name: 'Back?' }), 'ENTITY_IS_DELETED');
  const raw = await lf.http(server, lf.rest(`/sobjects/Account/${id}`), { method: 'DELETE', token: conn.accessToken });
  assertErrorBody(raw, 404, 'ENTITY_IS_DELETED');
});

test('INVALID_QUERY_LOCATOR for an unknown cursor', async () => {
  await sfError(() => conn.queryMore('01gZZ00000NoSuchAA-2000'), 'INVALID_QUERY_LOCATOR');
  await sfError(() => conn.queryMore('garbage'), 'INVALID_QUERY_LOCATOR');
  const raw = await lf.http(server, lf.rest('/query/01gZZ00000NoSuchAA-4000'), { token: conn.accessToken });
  assertErrorBody(raw, 400, 'INVALID_QUERY_LOCATOR');
});

test('NUMBER_OUTSIDE_VALID_RANGE for OFFSET above 2000', async () => {
  await sfError(() => conn.query('SELECT Id FROM Account ORDER BY Name OFFSET 2001'), 'NUMBER_OUTSIDE_VALID_RANGE');
  const ok = await conn.query('SELECT Id FROM Account ORDER BY Name OFFSET 2000');
  assert.equal(ok.totalSize, 0);
});

test('errors in a query come back as a 400 JSON array', async () => {
  const raw = await lf.http(server, lf.rest(`/query?q=${encodeURIComponent('SELECT Id FRM Account')}`),
    { token: conn.accessToken });
  assertErrorBody(raw, 400, 'MALFORMED_QUERY');
  const noQ = await lf.http(server, lf.rest('/query'), { token: conn.accessToken });
  assert.equal(noQ.status, 400, noQ.text);
});

test('a quoted datetime in SOQL is INVALID_FIELD, as in Salesforce', async () => {
  const err = await sfError(
    () => conn.query("SELECT Id FROM Account WHERE CreatedDate > '2020-01-01T00:00:00Z'"), 'INVALID_FIELD');
  assert.match(err.message, /ERROR at Row:1:Column:\d+/);
});

test('values of the wrong JSON type -> JSON_PARSER_ERROR naming the field', async () => {
  for (const [field, value] of [['Hired__c', '2024-13-45'], ['Salary__c', 'abc'], ['Active__c', 'yes']]) {
    const err = await sfError(() => conn.sobject('Teacher__c').create(teacher({ [field]: value })), 'JSON_PARSER_ERROR');
    assert.ok(err.message.includes(field) || err.message.includes(value), `${field}: ${err.message}`);
  }
});

test('more than 200 records in a collection -> EXCEEDED_ID_LIMIT', async () => {
  const recs = Array.from({ length: 201 }, (_, i) => ({ Name: `Too many ${i}` }));
  await sfError(() => conn.sobject('Account').create(recs), 'EXCEEDED_ID_LIMIT');
  const n = await conn.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Too many %'");
  assert.equal(n.totalSize, 0);
});

test('an unsupported method -> 405 METHOD_NOT_ALLOWED', async () => {
  const res = await lf.http(server, lf.rest('/sobjects/Account'), { method: 'PUT', token: conn.accessToken, body: {} });
  assertErrorBody(res, 405, 'METHOD_NOT_ALLOWED');
});

test('error responses on the REST API still carry Sforce-Limit-Info', async () => {
  const res = await lf.http(server, lf.rest('/sobjects/Nope__c'), { token: conn.accessToken });
  assertErrorBody(res, 404, 'NOT_FOUND');
  assert.match(res.headers.get('sforce-limit-info') || '', /^api-usage=\d+\/\d+/);
});

test('a malformed JSON body -> 400 JSON_PARSER_ERROR', async () => {
  for (const body of ['{"Name": "x"', '{Name: x}', '[1,2', '', 'null', '"just a string"']) {
    const res = await lf.http(server, lf.rest('/sobjects/Account'), {
      method: 'POST', token: conn.accessToken, headers: { 'content-type': 'application/json' }, body,
    });
    assert.equal(res.status, 400, `body ${JSON.stringify(body)}: ${res.status} ${res.text}`);
    assert.ok(Array.isArray(res.json), `body ${JSON.stringify(body)}: ${res.text}`);
    if (body.startsWith('{') || body.startsWith('[')) {
      assert.equal(res.json[0].errorCode, 'JSON_PARSER_ERROR', `body ${JSON.stringify(body)}: ${res.text}`);
    }
  }
  const coll = await lf.http(server, lf.rest('/composite/sobjects'), {
    method: 'POST', token: conn.accessToken, headers: { 'content-type': 'application/json' }, body: '{"records": [',
  });
  assertErrorBody(coll, 400, 'JSON_PARSER_ERROR');
  await assertAlive();
});

test('an invalid UTF-8 body is refused cleanly', async () => {
  const body = Buffer.concat([Buffer.from('{"Name": "bad '), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')]);
  const res = await lf.http(server, lf.rest('/sobjects/Account'), {
    method: 'POST', token: conn.accessToken, headers: { 'content-type': 'application/json' }, body,
  });
  assertErrorBody(res, 400, 'JSON_PARSER_ERROR');
  const q = await lf.http(server, lf.rest('/query?q=SELECT%20Id%20FROM%20Account%20WHERE%20Name%20%3D%20%27%FF%FE%27'),
    { token: conn.accessToken });
  assert.ok(q.status === 400 || q.status === 200, `invalid UTF-8 in SOQL: ${q.status} ${q.text}`);
  if (q.status === 400) assertErrorBody(q, 400);
  await assertAlive();
});

test('a 20 MB body gets 413 or a clean error, and the server carries on', async () => {
  const big = JSON.stringify({ Name: 'big', Description: 'x'.repeat(20 * 1024 * 1024) });
  let res;
  try {
    res = await lf.http(server, lf.rest('/sobjects/Account'), {
      method: 'POST', token: conn.accessToken, headers: { 'content-type': 'application/json' }, body: big,
    });
  } catch (err) {
    // Closing the connection after an early 413 may reset the upload; that is clean too.
    assert.match(String(err.cause?.code ?? err.code ?? err.message), /ECONNRESET|EPIPE|UND_ERR_SOCKET|other side closed/i,
      `unexpected client error: ${err.stack}`);
  }
  if (res) {
    assert.ok(res.status === 413 || res.status === 400, `status ${res.status}: ${res.text.slice(0, 300)}`);
  }
  await assertAlive();
});

test('an absurd SOQL query is refused cleanly', async () => {
  const token = conn.accessToken;
  // 100,000 characters: longer than Salesforce's URI limit (414) and SOQL limit.
  const long = `SELECT Id FROM Account WHERE Name = '${'a'.repeat(100000)}'`;
  const r1 = await lf.http(server, lf.rest(`/query?q=${encodeURIComponent(long)}`), { token });
  assert.ok(r1.status === 400 || r1.status === 414 || r1.status === 431, `100k query: ${r1.status} ${r1.text.slice(0, 300)}`);

  // 1,000 nested parentheses: no stack overflow; an error or an answer.
  const nested = `SELECT Id FROM Account WHERE ${'('.repeat(1000)}Name = 'x'${')'.repeat(1000)}`;
  const r2 = await lf.http(server, lf.rest(`/query?q=${encodeURIComponent(nested)}`), { token });
  assert.ok(r2.status === 400 || r2.status === 200, `nested query: ${r2.status} ${r2.text.slice(0, 300)}`);
  if (r2.status === 400) assertErrorBody(r2, 400);

  // Deep nesting with NOT and a long OR chain that still fits in a URI.
  const nots = `SELECT Id FROM Account WHERE ${'NOT ('.repeat(2000)}Name = 'x'${')'.repeat(2000)}`;
  const r3 = await lf.http(server, lf.rest(`/query?q=${encodeURIComponent(nots)}`), { token });
  assert.ok(r3.status === 400 || r3.status === 200 || r3.status === 414, `NOT chain: ${r3.status} ${r3.text.slice(0, 300)}`);
  const ors = `SELECT Id FROM Account WHERE ${Array.from({ length: 600 }, (_, i) => `Name = 'n${i}'`).join(' OR ')}`;
  const r4 = await lf.http(server, lf.rest(`/query?q=${encodeURIComponent(ors)}`), { token });
  assert.equal(r4.status, 200, `a long OR chain is valid SOQL: ${r4.status} ${r4.text.slice(0, 300)}`);
  assert.equal(r4.json.totalSize, 0);
  await assertAlive();
});

test('an unknown path -> 404 NOT_FOUND', async () => {
  const token = conn.accessToken;
  for (const p of [lf.rest('/nonsense'), lf.rest('/sobjects/Account/001/too/many/segments'), '/services/nope']) {
    const res = await lf.http(server, p, { token });
    assertErrorBody(res, 404, 'NOT_FOUND');
  }
  const outside = await lf.http(server, '/definitely/not/here');
  assert.equal(outside.status, 404);
});

test('a stalled half request does not block other clients', async () => {
  const stalled = [];
  try {
    for (let i = 0; i < 8; i++) {
      const sock = net.connect(server.port, '127.0.0.1');
      await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
      sock.on('error', () => {});
      // Half the headers for some, half the body for others, then silence.
      sock.write(i % 2
        ? `POST ${lf.rest('/sobjects/Account')} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${conn.accessToken}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"Name": "sta'
        : `GET ${lf.rest('/limits')} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthoriz`);
      stalled.push(sock);
    }
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      conn.query(`SELECT Id FROM Account WHERE Name = 'parallel ${i}'`)));
    assert.equal(results.length, 20);
    for (const r of results) assert.equal(r.totalSize, 0);
    assert.ok(Date.now() - started < 10000, `other requests took ${Date.now() - started} ms`);
  } finally {
    for (const s of stalled) s.destroy();
  }
  await assertAlive();
});

test('localforce exits 0 on SIGTERM', async () => {
  await server.stop();
});
