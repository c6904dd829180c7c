// The demo org, examples/dream-org.json, loads and is usable the way the demo
// and sfbridge use it: the sfbridge connected app, the demo user, every object
// seeded, and parents linked through their external IDs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as lf from './lib/localforce.mjs';

const DREAM_ORG = path.resolve(lf.COMPAT_DIR, '../../examples/dream-org.json');
let server;
let conn;

before(async () => {
  server = await lf.startServer({ org: DREAM_ORG });
  conn = new lf.jsforce.Connection({
    oauth2: { clientId: 'sfbridge-demo-client', clientSecret: 'sfbridge-demo-secret', loginUrl: server.url },
    version: lf.API_VERSION,
  });
  await conn.login('demo@localforce.test', 'localforce');
});

after(async () => {
  await server?.stop();
});

test('every object of the Dream Project is seeded', async () => {
  const expected = {
    Account: 9, Contact: 15, Teacher__c: 12, Student__c: 60, Course__c: 10,
    Enrollment__c: 150, Attendance__c: 300,
  };
  for (const [obj, n] of Object.entries(expected)) {
    const res = await conn.query(`SELECT COUNT() FROM ${obj}`);
    assert.equal(res.totalSize, n, `${obj}: ${res.totalSize} records`);
  }
  const identity = await conn.identity();
  assert.equal(identity.display_name, 'Demo User');
});

test('seed records are linked to their parents by external ID', async () => {
  const orphans = [
    'SELECT COUNT() FROM Teacher__c WHERE School__c = null',
    'SELECT COUNT() FROM Student__c WHERE School__c = null',
    'SELECT COUNT() FROM Course__c WHERE Teacher__c = null',
    'SELECT COUNT() FROM Enrollment__c WHERE Student__c = null OR Course__c = null',
    'SELECT COUNT() FROM Attendance__c WHERE Enrollment__c = null',
    'SELECT COUNT() FROM Contact WHERE AccountId = null',
  ];
  for (const q of orphans) assert.equal((await conn.query(q)).totalSize, 0, q);

  const res = await conn.query(
    'SELECT Session_Date__c, Enrollment__r.Student__r.Student_Number__c, Enrollment__r.Course__r.Course_Code__c, ' +
    "Enrollment__r.Course__r.Teacher__r.School__r.External_Id__c FROM Attendance__c WHERE Enrollment__r.Course__r.Course_Code__c = 'C-101' " +
    'ORDER BY Session_Date__c LIMIT 1');
  const row = res.records[0];
  assert.equal(row.Session_Date__c, '2024-09-16');
  assert.match(row.Enrollment__r.Student__r.Student_Number__c, /^DP-\d{5}$/);
  assert.equal(row.Enrollment__r.Course__r.Course_Code__c, 'C-101');
  assert.match(row.Enrollment__r.Course__r.Teacher__r.School__r.External_Id__c, /^SCH-\d{3}$/);
});

test('the sfbridge app\'s client credentials run as the demo user', async () => {
  const res = await lf.http(server, '/services/oauth2/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&client_id=sfbridge-demo-client&client_secret=sfbridge-demo-secret',
  });
  assert.equal(res.status, 200, res.text);
  const c = new lf.jsforce.Connection({ instanceUrl: res.json.instance_url, accessToken: res.json.access_token,
    version: lf.API_VERSION });
  assert.equal((await c.identity()).username, 'demo@localforce.test');
});

test('staff can log in and write', async () => {
  const staff = new lf.jsforce.Connection({ loginUrl: server.url, version: lf.API_VERSION });
  await staff.login('maya.okafor@dreamproject.test', 'dream-staff-1');
  const course = await staff.query("SELECT Id FROM Course__c WHERE Course_Code__c = 'C-301'");
  const student = await staff.query("SELECT Id FROM Student__c WHERE Student_Number__c = 'DP-24001'");
  const r = await staff.sobject('Enrollment__c').upsert({
    Enrollment_Key__c: 'DP-24001-C-301', Student__c: student.records[0].Id,
    Course__c: course.records[0].Id, Enrolled_On__c: '2025-05-01',
  }, 'Enrollment_Key__c');
  assert.equal(r.created, true);
  const rec = await staff.sobject('Enrollment__c').retrieve(r.id);
  assert.equal(rec.Status__c, 'Enrolled', 'the picklist default applies');
  assert.equal(rec.OwnerId, staff.userInfo.id);
});

test('localforce exits 0 on SIGTERM', async () => {
  await server.stop();
});
