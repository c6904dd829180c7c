// Helpers for the Salesforce CLI compatibility suite: start localforce over
// HTTPS with a self-signed certificate, run the real `sf` with a private HOME,
// and read what localforce holds through its REST API.
//
// The CLI runs with its ordinary settings: the only environment it gets
// beyond the machine's is a throw-away HOME (so it never reads or writes the
// machine's ~/.sf and ~/.sfdx), telemetry and update checks off, no colours,
// and NODE_EXTRA_CA_CERTS naming localforce's certificate, which is how a
// Node program is told to trust a private CA.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SFCLI_DIR = path.resolve(here, '..');
export const FIXTURE_ORG = path.join(SFCLI_DIR, 'fixtures', 'sf-org.json');
export const LOCALFORCE_BIN = process.env.LOCALFORCE_BIN
  ? path.resolve(SFCLI_DIR, process.env.LOCALFORCE_BIN)
  : path.resolve(SFCLI_DIR, '../../build/localforce');
const SF_RUN = path.join(SFCLI_DIR, 'node_modules', '@salesforce', 'cli', 'bin', 'run.js');
const BIN_DIR = path.join(SFCLI_DIR, 'node_modules', '.bin');

// The identities of fixtures/sf-org.json.
export const ADMIN_USER = 'admin@sfcli.test';
export const ADMIN_PASS = 's3cret!';
export const CLIENT_ID = 'sfcli-client-id';
export const CLIENT_SECRET = 'sfcli-secret';
export const API_VERSION = '66.0'; // the newest localforce serves: what the CLI picks

// HTTPS unless SFCLI_TLS=0 (plain http, for a localforce built without TLS).
export const USE_TLS = process.env.SFCLI_TLS !== '0';

const READY_RE = /localforce listening on (https?:\/\/[^\s]+)/;
const STDERR_KEEP = 64 * 1024;

/**
 * Start `localforce serve` on a free loopback port with a fresh :memory: org,
 * over HTTPS with a certificate localforce makes in tmp/tls. Returns
 * {url, ca (PEM or null), stderr(), stop()}; stop() throws unless localforce
 * exits 0 on SIGTERM (AddressSanitizer's leak report makes it non-zero).
 */
export async function startServer(tmp, opts = {}) {
  const args = ['serve', '--listen', '127.0.0.1:0', '--org', opts.org ?? FIXTURE_ORG,
    '--db', ':memory:'];
  const tlsDir = path.join(tmp, 'tls');
  if (USE_TLS) args.push('--tls-self-signed', tlsDir);
  const proc = spawn(LOCALFORCE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-STDERR_KEEP);
  });
  proc.stdout.setEncoding('utf8');
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => resolve((exitInfo = { code, signal })));
  });
  const url = await new Promise((resolve, reject) => {
    const fail = (why) => reject(new Error(`${why}\ncommand: ${LOCALFORCE_BIN} ${args.join(' ')}` +
      `\nstdout: ${stdout}\nstderr: ${stderr}`));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      fail('localforce did not print its ready line within 30 s');
    }, 30000);
    proc.on('error', (err) => fail(`cannot start localforce: ${err.message}`));
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(`localforce exited (code ${code}, signal ${signal}) before it was ready`);
    });
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = READY_RE.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/+$/, ''));
      }
    });
  });
  proc.stdout.on('data', () => {});
  const caFile = USE_TLS ? path.join(tlsDir, 'localforce.crt') : null;
  let stopped = null;
  return {
    url,
    caFile,
    ca: caFile ? fs.readFileSync(caFile, 'utf8') : null,
    stderr: () => stderr,
    async stop() {
      if (stopped) return stopped;
      if (!exitInfo) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
        await exited;
        clearTimeout(timer);
      }
      stopped = exitInfo;
      if (exitInfo.code !== 0) {
        throw new Error(`localforce did not exit 0 on SIGTERM (code ${exitInfo.code}, ` +
          `signal ${exitInfo.signal})\n--- stderr (tail) ---\n${stderr.slice(-8000)}`);
      }
      return exitInfo;
    },
  };
}

/**
 * A request to localforce (not through the CLI): what the org holds.
 * opts: method, token, form (object, sent urlencoded), json (object), headers.
 * Returns {status, headers, text, json}.
 */
export async function api(server, urlPath, opts = {}) {
  const url = new URL(urlPath, server.url);
  const headers = { ...(opts.headers || {}) };
  let body;
  if (opts.form) {
    body = new URLSearchParams(opts.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = 'application/json';
  }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const mod = url.protocol === 'https:' ? https : http;
  const req = mod.request(url, { method: opts.method ?? 'GET', headers, ca: server.ca ?? undefined });
  req.end(body);
  const [res] = await once(req, 'response');
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res) text += chunk;
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/** An access token for the fixture's admin (OAuth username-password flow). */
export async function accessToken(server) {
  const r = await api(server, '/services/oauth2/token', {
    method: 'POST',
    form: { grant_type: 'password', client_id: CLIENT_ID, client_secret: CLIENT_SECRET,
      username: ADMIN_USER, password: ADMIN_PASS },
  });
  if (r.status !== 200) throw new Error(`password grant: ${r.status} ${r.text}`);
  return r.json;
}

/** A REST query's records (every page), as localforce holds them. */
export async function query(server, token, soql, all = false) {
  let next = `/services/data/v${API_VERSION}/${all ? 'queryAll' : 'query'}?q=` +
    encodeURIComponent(soql);
  const records = [];
  while (next) {
    const r = await api(server, next, { token });
    if (r.status !== 200) throw new Error(`query ${soql}: ${r.status} ${r.text}`);
    records.push(...r.json.records);
    next = r.json.done ? null : r.json.nextRecordsUrl;
  }
  return records;
}

/**
 * The environment the CLI runs in: the machine's, less any SF_/SFDX_ setting
 * of its own, with HOME and the XDG directories in `home`.
 */
export function sfEnv(home, server, extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    // CI, CONTINUOUS_INTEGRATION and CI_* make the CLI print plain tables; the suite
    // sees what a user's terminal shows unless a test asks for CI in `extra`.
    if (/^(SF|SFDX|CI)_/.test(k) || ['CI', 'CONTINUOUS_INTEGRATION'].includes(k)) continue;
    if (k !== 'NODE_EXTRA_CA_CERTS' && k !== 'NODE_OPTIONS') env[k] = v;
  }
  Object.assign(env, {
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    XDG_DATA_HOME: path.join(home, '.local', 'share'),
    XDG_CACHE_HOME: path.join(home, '.cache'),
    XDG_STATE_HOME: path.join(home, '.local', 'state'),
    PATH: `${BIN_DIR}${path.delimiter}${process.env.PATH}`,
    SF_DISABLE_TELEMETRY: 'true',
    SF_AUTOUPDATE_DISABLE: 'true',
    SF_SKIP_NEW_VERSION_CHECK: 'true',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    ...extra,
  });
  if (server.caFile) env.NODE_EXTRA_CA_CERTS = server.caFile;
  return env;
}

/**
 * Run `sf ARGS...` (the CLI's own bin script on this Node 22) in cwd with env.
 * Returns {code, stdout, stderr, json (stdout parsed when it is JSON)}.
 */
export async function sf(args, { env, cwd, timeoutMs = 120000 }) {
  const proc = spawn(process.execPath, [SF_RUN, ...args], {
    cwd, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [code, signal] = await once(proc, 'exit');
  clearTimeout(timer);
  let json;
  try {
    json = JSON.parse(stdout);
  } catch {
    json = undefined;
  }
  return { code: signal ? `signal ${signal}` : code, stdout, stderr, json,
    toString: () => `sf ${args.join(' ')} -> ${code}\nstdout: ${stdout}\nstderr: ${stderr}` };
}

/** A fresh temporary directory (removed by the caller). */
export function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sfcli-'));
}

/** RFC 4180 CSV (quoted fields, "" escapes, CRLF or LF) to an array of rows. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
