// The Salesforce CLI (`sf`, @salesforce/cli) against localforce, unpatched,
// over HTTPS: log in with an access token, display the org, query (table,
// JSON, CSV), create / get / update / delete records, Bulk API 2.0 export
// and import. Each test checks what the CLI printed or wrote against what
// localforce holds, read through its REST API.
//
// One server and one CLI home for the whole file, and tests run in order:
// the login's stored org is what every later command uses (as a user's
// would be). `sf` takes a second or two to start, so the commands are few.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ADMIN_USER, API_VERSION, accessToken, api, parseCsv, query, sf, sfEnv, startServer, tempDir,
} from './lib/harness.mjs';

const ALIAS = 'lf';
let tmp;
let home;
let server;
let token;
let env;

before(async () => {
  const major = Number(process.versions.node.split('.')[0]);
  assert.ok(major >= 22, `the Salesforce CLI needs Node 22 or newer; this is ${process.version} ` +
    '(run the suite with tests/sfcli/node_modules/.bin/node)');
  tmp = tempDir();
  home = path.join(tmp, 'home');
  fs.mkdirSync(home);
  server = await startServer(tmp);
  token = (await accessToken(server)).access_token;
  env = sfEnv(home, server);
});

after(async () => {
  if (server) await server.stop().catch(() => {});
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** sf ARGS in the temp dir; fails the test, with everything it printed, unless it exits 0. */
async function sfOk(args, extraEnv = {}) {
  const r = await sf(args, { env: { ...env, ...extraEnv }, cwd: tmp });
  assert.equal(r.code, 0, String(r));
  return r;
}

/** A record as REST reads it, less `attributes`. */
async function restRecord(obj, id) {
  const r = await api(server, `/services/data/v${API_VERSION}/sobjects/${obj}/${id}`, { token });
  assert.equal(r.status, 200, r.text);
  delete r.json.attributes;
  return r.json;
}

const TEACHERS = 'SELECT Id, Name, Email__c, Salary__c, Hired__c, Active__c, School__r.Name ' +
  'FROM Teacher__c ORDER BY Name';

test('sf org login access-token stores the org, its instance URL ending in /', async () => {
  const r = await sfOk(['org', 'login', 'access-token', '--instance-url', server.url,
    '--no-prompt', '--alias', ALIAS, '--set-default', '--json'], { SF_ACCESS_TOKEN: token });
  const ident = await api(server, '/services/oauth2/userinfo', { token });
  assert.equal(ident.status, 200, ident.text);
  assert.equal(r.json.status, 0);
  assert.equal(r.json.result.username, ADMIN_USER);
  assert.equal(r.json.result.orgId, ident.json.organization_id);
  assert.equal(r.json.result.instanceUrl, `${server.url}/`);
  assert.equal(r.json.result.instanceApiVersion, API_VERSION);
  // Stored in the suite's own HOME, as the CLI stores every org it logs in to.
  const auth = JSON.parse(fs.readFileSync(path.join(home, '.sfdx', `${ADMIN_USER}.json`), 'utf8'));
  assert.equal(auth.instanceUrl, `${server.url}/`);
  assert.equal(auth.orgId, ident.json.organization_id);
  const aliases = JSON.parse(fs.readFileSync(path.join(home, '.sfdx', 'alias.json'), 'utf8'));
  assert.equal(aliases.orgs[ALIAS], ADMIN_USER);
});

test('sf org display shows the org connected', async () => {
  const r = await sfOk(['org', 'display', '--json']);
  const ident = await api(server, '/services/oauth2/userinfo', { token });
  assert.equal(r.json.result.connectedStatus, 'Connected');
  assert.equal(r.json.result.id, ident.json.organization_id);
  assert.equal(r.json.result.username, ADMIN_USER);
  assert.equal(r.json.result.alias, ALIAS);
  assert.equal(r.json.result.instanceUrl, `${server.url}/`);
  assert.equal(r.json.result.apiVersion, API_VERSION);
  assert.ok(!r.stdout.includes(token), 'the access token is not printed');
});

test('sf org list limits lists the org\'s /limits', async () => {
  const r = await sfOk(['org', 'list', 'limits', '--json']);
  const limits = await api(server, `/services/data/v${API_VERSION}/limits`, { token });
  assert.equal(limits.status, 200, limits.text);
  const shown = Object.fromEntries(r.json.result.map((l) => [l.name, l]));
  assert.deepEqual(Object.keys(shown).sort(), Object.keys(limits.json).sort());
  assert.equal(shown.DailyApiRequests.max, limits.json.DailyApiRequests.Max);
  assert.ok(shown.DailyApiRequests.remaining < shown.DailyApiRequests.max);
  assert.ok(shown.DailyApiRequests.remaining >= limits.json.DailyApiRequests.Remaining);
});

/**
 * The rows of the table `sf data query` prints, as arrays of trimmed cells: split on
 * the borders (│) of a terminal's table, or at the headings' columns of the plain
 * table the CLI prints when CI is set.
 */
function tableRows(stdout, headings, rowOf) {
  const lines = stdout.split('\n');
  const header = lines.find((l) => headings.every((h) => l.includes(h)));
  assert.ok(header, stdout);
  const bordered = header.includes('│');
  const re = new RegExp(headings.map((h) => h.replace('.', '\\.')).join(bordered ? '\\s*│\\s*' : '\\s+'));
  assert.match(header, re);
  const starts = [];
  headings.forEach((h, i) => starts.push(header.indexOf(h, i ? starts[i - 1] + 1 : 0)));
  return { bordered, rows: lines.filter(rowOf).map((l) => bordered
    ? l.split('│').slice(1, -1).map((c) => c.trim())
    : starts.map((s, i) => l.slice(s, starts[i + 1]).trim())) };
}

for (const [how, extra] of [['a terminal', {}], ['CI', { CI: 'true' }]]) {
  test(`sf data query prints a table with parent fields (columns=true), as in ${how}`, async () => {
    const soql = 'SELECT Name, Salary__c, School__r.Name, Owner.Name FROM Teacher__c ORDER BY Name';
    const r = await sfOk(['data', 'query', '-q', soql], extra);
    const held = await query(server, token, soql);
    assert.equal(held.length, 3);
    const { bordered, rows } = tableRows(r.stdout, ['NAME', 'SALARY__C', 'SCHOOL__R.NAME', 'OWNER.NAME'],
      (l) => held.some((t) => l.includes(t.Name)));
    assert.equal(bordered, how === 'a terminal', r.stdout);
    assert.equal(rows.length, held.length, r.stdout);
    // a null field prints as null, a field of no parent as nothing.
    held.forEach((t, i) => assert.deepEqual(rows[i], [t.Name,
      t.Salary__c === null ? 'null' : String(t.Salary__c), t.School__r ? t.School__r.Name : '',
      t.Owner.Name]));
    assert.match(r.stdout, /Total number of records retrieved: 3\./);
  });
}

test('sf data query --json returns the records localforce holds', async () => {
  const soql = 'SELECT Id, Name, Industry, External_Id__c FROM Account ORDER BY External_Id__c';
  const r = await sfOk(['data', 'query', '-q', soql, '--json']);
  const held = await query(server, token, soql);
  assert.equal(r.json.result.totalSize, 3);
  assert.equal(r.json.result.done, true);
  assert.deepEqual(r.json.result.records, held);
});

test('sf data query -r csv writes the rows, parent fields dotted', async () => {
  const r = await sfOk(['data', 'query', '-q', TEACHERS, '-r', 'csv']);
  const held = await query(server, token, TEACHERS);
  const rows = parseCsv(r.stdout.trim());
  assert.deepEqual(rows[0], ['Id', 'Name', 'Email__c', 'Salary__c', 'Hired__c', 'Active__c',
    'School__r.Name']);
  assert.deepEqual(rows.slice(1), held.map((t) => [t.Id, t.Name, t.Email__c,
    t.Salary__c === null ? '' : String(t.Salary__c), t.Hired__c, String(t.Active__c),
    t.School__r ? t.School__r.Name : '']));
});

test('sf data query with a misspelt field prints Salesforce\'s error', async () => {
  const r = await sf(['data', 'query', '-q', 'SELECT Nme FROM Teacher__c'], { env, cwd: tmp });
  assert.equal(r.code, 1, String(r));
  assert.match(r.stderr, /ERROR at Row:1:Column:8/);
  assert.match(r.stderr, /No such column 'Nme' on entity 'Teacher__c'/);
});

let created;
test('sf data create record creates what it was given', async () => {
  const r = await sfOk(['data', 'create', 'record', '-s', 'Teacher__c', '--json', '-v',
    "First_Name__c=Katherine Name='Katherine Johnson' Email__c=kj@school.test Salary__c=70500.25 " +
    'Hired__c=2022-08-15 Active__c=true Status__c=Active']);
  assert.equal(r.json.result.success, true);
  created = r.json.result.id;
  assert.match(created, /^a01[0-9A-Za-z]{15}$/);
  const rec = await restRecord('Teacher__c', created);
  assert.equal(rec.Name, 'Katherine Johnson');
  assert.equal(rec.First_Name__c, 'Katherine');
  assert.equal(rec.Email__c, 'kj@school.test');
  assert.equal(rec.Salary__c, 70500.25);
  assert.equal(rec.Hired__c, '2022-08-15');
  assert.equal(rec.Active__c, true);
  assert.equal(rec.Status__c, 'Active');
});

test('sf data create record without a required field fails as in Salesforce', async () => {
  const before = await query(server, token, 'SELECT Id FROM Teacher__c');
  const r = await sf(['data', 'create', 'record', '-s', 'Teacher__c', '-v', 'Name=Nobody'],
    { env, cwd: tmp });
  assert.equal(r.code, 1, String(r));
  assert.match(r.stderr, /Required fields are missing: \[First_Name__c\]/);
  assert.equal((await query(server, token, 'SELECT Id FROM Teacher__c')).length, before.length);
});

test('sf data update record changes the record', async () => {
  const before = await restRecord('Teacher__c', created);
  const r = await sfOk(['data', 'update', 'record', '-s', 'Teacher__c', '-i', created, '--json',
    '-v', 'Salary__c=71000 Status__c=\'On leave\'']);
  assert.equal(r.json.result.success, true);
  const rec = await restRecord('Teacher__c', created);
  assert.equal(rec.Salary__c, 71000);
  assert.equal(rec.Status__c, 'On leave');
  assert.equal(rec.Name, 'Katherine Johnson');
  assert.ok(rec.LastModifiedDate >= before.LastModifiedDate);
  assert.ok(rec.SystemModstamp > before.SystemModstamp);
});

test('sf data get record -w finds the record and prints every field', async () => {
  const r = await sfOk(['data', 'get', 'record', '-s', 'Teacher__c', '-w',
    'Email__c=kj@school.test', '--json']);
  const rec = await restRecord('Teacher__c', created);
  const got = { ...r.json.result };
  assert.equal(got.attributes.type, 'Teacher__c');
  assert.equal(got.attributes.url, `/services/data/v${API_VERSION}/sobjects/Teacher__c/${created}`);
  delete got.attributes;
  assert.deepEqual(got, rec);
});

test('sf data export bulk writes the CSV of a Bulk API 2.0 query job', async () => {
  const out = path.join(tmp, 'teachers.csv');
  const r = await sfOk(['data', 'export', 'bulk', '-q', TEACHERS, '--output-file', out,
    '--wait', '5', '--json']);
  const held = await query(server, token, TEACHERS);
  assert.equal(r.json.result.totalSize, held.length);
  const rows = parseCsv(fs.readFileSync(out, 'utf8'));
  assert.deepEqual(rows[0], ['Id', 'Name', 'Email__c', 'Salary__c', 'Hired__c', 'Active__c',
    'School__r.Name']);
  assert.equal(rows.length, held.length + 1);
  held.forEach((t, i) => {
    const [id, name, email, salary, hired, active, school] = rows[i + 1];
    assert.deepEqual([id, name, email, hired, active, school],
      [t.Id, t.Name, t.Email__c ?? '', t.Hired__c ?? '', String(t.Active__c),
        t.School__r ? t.School__r.Name : '']);
    assert.equal(salary === '' ? null : Number(salary), t.Salary__c);
  });
});

test('sf data export bulk --result-format json keeps quotes and commas', async () => {
  const soql = 'SELECT Id, Name, Industry FROM Account ORDER BY External_Id__c';
  const out = path.join(tmp, 'accounts.json');
  await sfOk(['data', 'export', 'bulk', '-q', soql, '--output-file', out,
    '--result-format', 'json', '--wait', '5', '--json']);
  const held = (await query(server, token, soql)).map(({ attributes, ...rest }) => rest);
  assert.ok(held.some((a) => a.Name.includes('"') && a.Name.includes(',')));
  assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), held);
});

test('sf data import bulk inserts a CSV, parents by external id', async () => {
  const file = path.join(tmp, 'new-teachers.csv');
  fs.writeFileSync(file, 'First_Name__c,Name,Email__c,Salary__c,School__r.External_Id__c\n' +
    'Mary,Mary Jackson,mj@school.test,48000,S-1\n' +
    'Dorothy,"Vaughan, Dorothy",dv@school.test,,S-2\n');
  const r = await sfOk(['data', 'import', 'bulk', '-s', 'Teacher__c', '--file', file,
    '--wait', '5', '--json']);
  assert.equal(r.json.result.processedRecords, 2, r.stdout);
  assert.equal(r.json.result.successfulRecords, 2, r.stdout);
  assert.equal(r.json.result.failedRecords, 0, r.stdout);
  const held = await query(server, token, "SELECT Name, Salary__c, School__r.External_Id__c " +
    "FROM Teacher__c WHERE Email__c IN ('mj@school.test', 'dv@school.test') ORDER BY Email__c");
  assert.deepEqual(held.map((t) => [t.Name, t.Salary__c, t.School__r.External_Id__c]),
    [['Vaughan, Dorothy', null, 'S-2'], ['Mary Jackson', 48000, 'S-1']]);
});

test('sf data import tree inserts accounts with their teachers (composite/tree)', async () => {
  const file = path.join(tmp, 'schools.json');
  const teacher = (ref, first, last, email) => ({
    attributes: { type: 'Teacher__c', referenceId: ref },
    First_Name__c: first, Name: `${first} ${last}`, Email__c: email,
  });
  fs.writeFileSync(file, JSON.stringify({ records: [
    { attributes: { type: 'Account', referenceId: 'AccRef1' }, Name: 'Tree School',
      External_Id__c: 'T-1', Teachers__r: { records: [
        teacher('TRef1', 'Edsger', 'Dijkstra', 'ed@tree.test'),
        teacher('TRef2', 'Barbara', 'Liskov', 'bl@tree.test')] } },
    { attributes: { type: 'Account', referenceId: 'AccRef2' }, Name: 'Tree College',
      External_Id__c: 'T-2' },
  ] }));
  const r = await sfOk(['data', 'import', 'tree', '--files', file, '--json']);
  const held = await query(server, token, 'SELECT Id, Name, School__r.External_Id__c ' +
    "FROM Teacher__c WHERE Email__c LIKE '%@tree.test' ORDER BY Name");
  const schools = await query(server, token,
    "SELECT Id, External_Id__c FROM Account WHERE External_Id__c LIKE 'T-%' ORDER BY Name");
  assert.deepEqual(held.map((t) => [t.Name, t.School__r.External_Id__c]),
    [['Barbara Liskov', 'T-1'], ['Edsger Dijkstra', 'T-1']]);
  const ids = Object.fromEntries(r.json.result.map((x) => [x.refId, [x.type, x.id]]));
  assert.deepEqual(ids, {
    AccRef1: ['Account', schools.find((a) => a.External_Id__c === 'T-1').Id],
    AccRef2: ['Account', schools.find((a) => a.External_Id__c === 'T-2').Id],
    TRef1: ['Teacher__c', held.find((t) => t.Name === 'Edsger Dijkstra').Id],
    TRef2: ['Teacher__c', held.find((t) => t.Name === 'Barbara Liskov').Id],
  });
  // All or none: a child that fails takes its parent with it.
  fs.writeFileSync(file, JSON.stringify({ records: [
    { attributes: { type: 'Account', referenceId: 'BadRef1' }, Name: 'Half School',
      Teachers__r: { records: [{ attributes: { type: 'Teacher__c', referenceId: 'BadRef2' },
        Name: 'No First Name' }] } }] }));
  const bad = await sf(['data', 'import', 'tree', '--files', file, '--json'], { env, cwd: tmp });
  assert.equal(bad.code, 1, String(bad));
  assert.equal(bad.json.message, 'Data Import failed', String(bad));
  assert.deepEqual(bad.json.data, [{ referenceId: 'BadRef2', StatusCode: 'REQUIRED_FIELD_MISSING',
    Message: 'Required fields are missing: [First_Name__c]', fields: 'First_Name__c' }]);
  assert.equal((await query(server, token,
    "SELECT Id FROM Account WHERE Name = 'Half School'")).length, 0);
});

test('sf data delete record sends the record to the recycle bin', async () => {
  const r = await sfOk(['data', 'delete', 'record', '-s', 'Teacher__c', '-w',
    'Email__c=mj@school.test', '--json']);
  const [gone] = await query(server, token,
    "SELECT Id, IsDeleted FROM Teacher__c WHERE Email__c = 'mj@school.test'", true);
  assert.equal(r.json.result.id, gone.Id);
  assert.equal(gone.IsDeleted, true);
  const live = await query(server, token,
    "SELECT Id FROM Teacher__c WHERE Email__c = 'mj@school.test'");
  assert.equal(live.length, 0);
});

test('localforce exits 0 on SIGTERM', async () => {
  await server.stop();
});
