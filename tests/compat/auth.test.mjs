// Authentication as jsforce 3.x does it against Salesforce: OAuth 2.0
// username-password, SOAP login, client credentials, authorization code +
// refresh token, session expiry and transparent refresh, logout.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as lf from './lib/localforce.mjs';

const { jsforce } = lf;
let server;

before(async () => {
  server = await lf.startServer();
});

after(async () => {
  await server?.stop();
});

const ORG_ID_RE = /^00D[0-9A-Za-z]{15}$/;
const USER_ID_RE = /^005[0-9A-Za-z]{15}$/;

function soql(conn) {
  return conn.query("SELECT Id, Name FROM Account WHERE External_Id__c = 'S-1'");
}

test('OAuth username-password login gives a token, instance URL and the identity', async () => {
  const conn = new jsforce.Connection({ oauth2: lf.oauth2Config(server), version: lf.API_VERSION });
  const userInfo = await conn.login(lf.ADMIN_USER, lf.ADMIN_PASS);

  assert.equal(typeof conn.accessToken, 'string');
  assert.ok(conn.accessToken.length > 20, `access token too short: ${conn.accessToken}`);
  assert.equal(conn.instanceUrl, server.url);
  assert.match(userInfo.id, USER_ID_RE);
  assert.match(userInfo.organizationId, ORG_ID_RE);
  assert.ok(lf.isValidSfid(userInfo.id, '005'), `bad user id checksum ${userInfo.id}`);
  assert.ok(lf.isValidSfid(userInfo.organizationId, '00D'), `bad org id checksum ${userInfo.organizationId}`);
  // Salesforce session ids start with the 15-character org id and "!".
  assert.ok(conn.accessToken.startsWith(userInfo.organizationId.slice(0, 15) + '!'),
    `access token does not start with the org id: ${conn.accessToken.slice(0, 20)}...`);
  assert.equal(userInfo.url, `${server.url}/id/${userInfo.organizationId}/${userInfo.id}`);

  const identity = await conn.identity();
  assert.equal(identity.user_id, userInfo.id);
  assert.equal(identity.organization_id, userInfo.organizationId);
  assert.equal(identity.username, lf.ADMIN_USER);
  assert.equal(identity.email, 'admin@compat.test');
  assert.equal(identity.display_name, 'Ada Admin');
  assert.equal(identity.id, userInfo.url);

  const res = await soql(conn);
  assert.equal(res.totalSize, 1);
  assert.equal(res.records[0].Name, 'Seed School');
});

test('the token endpoint answers in Salesforce\'s shape', async () => {
  const res = await lf.http(server, '/services/oauth2/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password', client_id: lf.CLIENT_ID, client_secret: lf.CLIENT_SECRET,
      username: lf.ADMIN_USER, password: lf.ADMIN_PASS,
    }).toString(),
  });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^application\/json(;|$)/);
  const tok = res.json;
  assert.equal(tok.token_type, 'Bearer');
  assert.equal(tok.instance_url, server.url);
  assert.match(tok.id, new RegExp(`^${server.url}/id/00D[0-9A-Za-z]{15}/005[0-9A-Za-z]{15}$`));
  assert.equal(typeof tok.issued_at, 'string');
  assert.match(tok.issued_at, /^\d{13}$/);
  assert.ok(Math.abs(Number(tok.issued_at) - Date.now()) < 60000, 'issued_at is not now in ms');
  assert.equal(typeof tok.signature, 'string');
  assert.equal(tok.refresh_token, undefined, 'the password flow issues no refresh token');
});

test('SOAP login (Connection without a client secret)', async () => {
  const conn = new jsforce.Connection({ loginUrl: server.url, version: lf.API_VERSION });
  const userInfo = await conn.login(lf.ADMIN_USER, lf.ADMIN_PASS);
  assert.match(userInfo.id, USER_ID_RE);
  assert.match(userInfo.organizationId, ORG_ID_RE);
  assert.equal(conn.instanceUrl, server.url);
  assert.equal(typeof conn.accessToken, 'string');

  // The SOAP session is the same user as the OAuth one and works on REST.
  const oauthConn = await lf.login(server);
  assert.equal(userInfo.id, oauthConn.userInfo.id);
  assert.equal(userInfo.organizationId, oauthConn.userInfo.organizationId);
  const res = await soql(conn);
  assert.equal(res.totalSize, 1);
});

test('wrong password via OAuth -> invalid_grant', async () => {
  const conn = new jsforce.Connection({ oauth2: lf.oauth2Config(server) });
  const err = await lf.catchError(() => conn.login(lf.ADMIN_USER, 'wrong-password'), 'login');
  assert.equal(err.name, 'invalid_grant');
  assert.equal(err.message, 'authentication failure');
  assert.equal(conn.accessToken, undefined);
});

test('unknown user via OAuth -> invalid_grant; unknown client id -> invalid_client_id', async () => {
  const conn = new jsforce.Connection({ oauth2: lf.oauth2Config(server) });
  const err = await lf.catchError(() => conn.login('nobody@compat.test', lf.ADMIN_PASS), 'login');
  assert.equal(err.name, 'invalid_grant');

  const conn2 = new jsforce.Connection({ oauth2: lf.oauth2Config(server, { clientId: 'no-such-app' }) });
  const err2 = await lf.catchError(() => conn2.login(lf.ADMIN_USER, lf.ADMIN_PASS), 'login');
  assert.equal(err2.name, 'invalid_client_id');
});

test('wrong password via SOAP -> INVALID_LOGIN fault', async () => {
  const conn = new jsforce.Connection({ loginUrl: server.url });
  const err = await lf.catchError(() => conn.login(lf.ADMIN_USER, 'wrong-password'), 'SOAP login');
  assert.match(err.message, /^INVALID_LOGIN: /);

  // The raw fault: HTTP 500, text/xml, faultcode and sf:exceptionCode.
  const res = await lf.http(server, `/services/Soap/u/${lf.API_VERSION}`, {
    method: 'POST',
    headers: { 'content-type': 'text/xml', SOAPAction: '""' },
    body: '<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Header/><se:Body>' +
      '<login xmlns="urn:partner.soap.sforce.com"><username>admin@compat.test</username>' +
      '<password>nope</password></login></se:Body></se:Envelope>',
  });
  assert.equal(res.status, 500);
  assert.match(res.headers.get('content-type'), /^text\/xml/);
  assert.match(res.text, /<faultcode>[^<]*INVALID_LOGIN<\/faultcode>/);
  assert.match(res.text, /<sf:exceptionCode>INVALID_LOGIN<\/sf:exceptionCode>/);
});

test('client credentials flow runs as the connected app\'s user', async () => {
  const form = new URLSearchParams({
    grant_type: 'client_credentials', client_id: lf.CLIENT_ID, client_secret: lf.CLIENT_SECRET,
  });
  const res = await lf.http(server, '/services/oauth2/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  assert.equal(res.status, 200, res.text);
  const tok = res.json;
  assert.equal(typeof tok.access_token, 'string');
  assert.equal(tok.instance_url, server.url);

  const conn = new jsforce.Connection({ instanceUrl: tok.instance_url, accessToken: tok.access_token,
    version: lf.API_VERSION });
  const identity = await conn.identity();
  assert.equal(identity.username, lf.ADMIN_USER);
  assert.equal((await soql(conn)).totalSize, 1);

  // The same with HTTP Basic client authentication (simple-salesforce does this).
  const basic = Buffer.from(`${lf.CLIENT_ID}:${lf.CLIENT_SECRET}`).toString('base64');
  const res2 = await lf.http(server, '/services/oauth2/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${basic}` },
    body: 'grant_type=client_credentials',
  });
  assert.equal(res2.status, 200, res2.text);
  assert.equal(typeof res2.json.access_token, 'string');

  // A wrong secret is refused.
  const res3 = await lf.http(server, '/services/oauth2/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: lf.CLIENT_ID,
      client_secret: 'wrong' }).toString(),
  });
  assert.ok(res3.status === 400 || res3.status === 401, `status ${res3.status}`);
  assert.equal(typeof res3.json?.error, 'string', res3.text);
});

test('a bogus token gets 401 INVALID_SESSION_ID', async () => {
  const res = await lf.http(server, lf.rest('/sobjects'), { token: '00Dbogus!nothing' });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('content-type'), /^application\/json(;|$)/);
  assert.ok(Array.isArray(res.json), `body is not a JSON array: ${res.text}`);
  assert.equal(res.json[0].errorCode, 'INVALID_SESSION_ID');
  assert.equal(typeof res.json[0].message, 'string');

  const none = await lf.http(server, lf.rest('/sobjects'));
  assert.equal(none.status, 401);
  assert.equal(none.json?.[0]?.errorCode, 'INVALID_SESSION_ID', none.text);
});

test('both "Bearer" and "OAuth" authorization schemes are accepted', async () => {
  const conn = await lf.login(server);
  const bearer = await lf.http(server, lf.rest('/limits'), {
    headers: { authorization: `Bearer ${conn.accessToken}` },
  });
  assert.equal(bearer.status, 200, bearer.text);
  const oauth = await lf.http(server, lf.rest('/limits'), {
    headers: { authorization: `OAuth ${conn.accessToken}` },
  });
  assert.equal(oauth.status, 200, oauth.text);
});

test('an expired session is refreshed transparently after login()', async () => {
  const conn = await lf.login(server);
  const before1 = conn.accessToken;
  let refreshed = 0;
  conn.on('refresh', () => { refreshed += 1; });

  await lf.expireSessions(server);
  const stale = await lf.http(server, lf.rest('/limits'), { token: before1 });
  assert.equal(stale.status, 401);
  assert.equal(stale.json?.[0]?.errorCode, 'INVALID_SESSION_ID', stale.text);

  const res = await soql(conn);
  assert.equal(res.totalSize, 1);
  assert.notEqual(conn.accessToken, before1);
  assert.equal(refreshed, 1);
});

test('a session past --session-ttl expires and jsforce logs in again', async () => {
  const short = await lf.startServer({ ttl: 2 });
  try {
    const conn = await lf.login(short);
    const first = conn.accessToken;
    assert.equal((await soql(conn)).totalSize, 1);
    await new Promise((r) => setTimeout(r, 3000));

    const stale = await lf.http(short, lf.rest('/limits'), { token: first });
    assert.equal(stale.status, 401, 'the token outlived --session-ttl 2');
    assert.equal(stale.json?.[0]?.errorCode, 'INVALID_SESSION_ID', stale.text);

    assert.equal((await soql(conn)).totalSize, 1);
    assert.notEqual(conn.accessToken, first);
  } finally {
    await short.stop();
  }
});

// Drive the authorize page as a browser would: GET it, fill in the login form
// it returns, POST it, and take the code from the redirect.
async function authorizeCode(redirectUri) {
  const params = new URLSearchParams({
    response_type: 'code', client_id: lf.CLIENT_ID, redirect_uri: redirectUri, state: 'xyz',
  });
  const authzUrl = `${server.url}/services/oauth2/authorize?${params}`;
  const page = await fetch(authzUrl, { redirect: 'manual' });
  const html = await page.text();
  assert.equal(page.status, 200, `authorize page: HTTP ${page.status} ${html.slice(0, 500)}`);
  assert.match(page.headers.get('content-type') || '', /^text\/html/);

  const formMatch = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  assert.ok(formMatch, `no <form> on the authorize page: ${html.slice(0, 500)}`);
  const attr = (tag, name) => {
    const m = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
    return m ? (m[2] ?? m[3] ?? m[4]) : undefined;
  };
  const unescape = (s) => s.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  const method = (attr(formMatch[1], 'method') || 'GET').toUpperCase();
  const action = new URL(unescape(attr(formMatch[1], 'action') || authzUrl), authzUrl);
  const fields = new URLSearchParams();
  for (const m of formMatch[2].matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(m[0], 'name');
    if (!name) continue;
    const type = (attr(m[0], 'type') || 'text').toLowerCase();
    let value = unescape(attr(m[0], 'value') ?? '');
    if (/user/i.test(name)) value = lf.ADMIN_USER;
    else if (type === 'password' || /pass/i.test(name)) value = lf.ADMIN_PASS;
    fields.append(name, value);
  }
  assert.ok([...fields.values()].includes(lf.ADMIN_USER), `no username field in the form: ${formMatch[0]}`);

  let res;
  if (method === 'POST') {
    res = await fetch(action, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: fields.toString(),
    });
  } else {
    for (const [k, v] of fields) action.searchParams.set(k, v);
    res = await fetch(action, { redirect: 'manual' });
  }
  assert.equal(res.status, 302, `authorize form: HTTP ${res.status} ${(await res.text()).slice(0, 500)}`);
  const location = new URL(res.headers.get('location'));
  assert.equal(`${location.origin}${location.pathname}`, redirectUri);
  assert.equal(location.searchParams.get('state'), 'xyz');
  const code = location.searchParams.get('code');
  assert.ok(code, `no code in ${location}`);
  return code;
}

test('authorization code flow issues a refresh token that revives a stale connection', async () => {
  const redirectUri = 'http://localhost:1717/OauthRedirect';
  const code = await authorizeCode(redirectUri);

  const conn = new jsforce.Connection({ oauth2: lf.oauth2Config(server, { redirectUri }),
    version: lf.API_VERSION });
  const userInfo = await conn.authorize(code);
  assert.match(userInfo.id, USER_ID_RE);
  assert.equal(typeof conn.refreshToken, 'string', 'no refresh_token from the authorization_code grant');
  assert.equal(conn.instanceUrl, server.url);
  assert.equal((await soql(conn)).totalSize, 1);

  // A code is good for one exchange only.
  const again = await lf.catchError(() => conn.oauth2.requestToken(code), 'second code exchange');
  assert.equal(again.name, 'invalid_grant');

  // A connection holding only the refresh token and a stale access token recovers.
  const revived = new jsforce.Connection({
    oauth2: lf.oauth2Config(server), instanceUrl: server.url, version: lf.API_VERSION,
    refreshToken: conn.refreshToken, accessToken: 'stale',
  });
  let refreshed = 0;
  revived.on('refresh', () => { refreshed += 1; });
  assert.equal((await soql(revived)).totalSize, 1);
  assert.notEqual(revived.accessToken, 'stale');
  assert.equal(refreshed, 1);

  // A bogus refresh token is an invalid_grant.
  const bad = await lf.http(server, '/services/oauth2/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'nope',
      client_id: lf.CLIENT_ID, client_secret: lf.CLIENT_SECRET }).toString(),
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.json?.error, 'invalid_grant', bad.text);
});

test('logout revokes the OAuth session and the SOAP session', async () => {
  const conn = await lf.login(server);
  const token = conn.accessToken;
  assert.equal((await lf.http(server, lf.rest('/limits'), { token })).status, 200);
  await conn.logout();
  assert.equal(conn.accessToken, null);
  const after1 = await lf.http(server, lf.rest('/limits'), { token });
  assert.equal(after1.status, 401, 'the revoked OAuth token still works');
  assert.equal(after1.json?.[0]?.errorCode, 'INVALID_SESSION_ID', after1.text);

  const soap = new jsforce.Connection({ loginUrl: server.url, version: lf.API_VERSION });
  await soap.login(lf.ADMIN_USER, lf.ADMIN_PASS);
  const soapToken = soap.accessToken;
  await soap.logout();
  const after2 = await lf.http(server, lf.rest('/limits'), { token: soapToken });
  assert.equal(after2.status, 401, 'the SOAP session still works after logout');
});

test('localforce exits 0 on SIGTERM', async () => {
  await server.stop();
});
