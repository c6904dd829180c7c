// Helpers for the jsforce compatibility suite: start and stop a localforce
// server on a free port, log in with jsforce, call the admin API, send raw
// requests, and check Salesforce record IDs.
//
// Every test file starts its own server (a fresh :memory: org) in before()
// and stops it at the end; stop() fails when the server does not exit 0 on
// SIGTERM, so a leak reported by AddressSanitizer fails the run.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import jsforce from 'jsforce';

const here = path.dirname(fileURLToPath(import.meta.url));
export const COMPAT_DIR = path.resolve(here, '..');
export const FIXTURE_ORG = path.join(COMPAT_DIR, 'fixtures', 'test-org.json');
export const LOCALFORCE_BIN = process.env.LOCALFORCE_BIN
  ? path.resolve(COMPAT_DIR, process.env.LOCALFORCE_BIN)
  : path.resolve(COMPAT_DIR, '../../build/localforce');

// The identities of tests/compat/fixtures/test-org.json.
export const ADMIN_USER = 'admin@compat.test';
export const ADMIN_PASS = 's3cret!';
export const CLIENT_ID = 'compat-client-id';
export const CLIENT_SECRET = 'compat-secret';
export const API_VERSION = '59.0';

const READY_RE = /localforce listening on (https?:\/\/[^\s]+)/;
// Over HTTPS as Salesforce is, when LOCALFORCE_TLS_DIR names a folder holding (or to hold)
// localforce's self-signed certificate, which Node trusts through NODE_EXTRA_CA_CERTS
// (scripts/test.sh sets both): jsforce's ordinary settings, nothing patched.
const TLS_DIR = process.env.LOCALFORCE_TLS_DIR || '';
const STDERR_KEEP = 64 * 1024;

/**
 * Start `localforce serve` and wait for its ready line.
 * opts: org (path), ttl (seconds), args (extra CLI args), env (extra
 * environment variables, e.g. LOCALFORCE_COMETD_TIMEOUT_MS), timeoutMs.
 * Returns {url, port, proc, stderr(), stop()}.
 */
export async function startServer(opts = {}) {
  const org = opts.org ?? FIXTURE_ORG;
  const args = ['serve', '--listen', '127.0.0.1:0', '--org', org, '--db', ':memory:'];
  if (TLS_DIR) args.push('--tls-self-signed', TLS_DIR);
  if (opts.ttl !== undefined) args.push('--session-ttl', String(opts.ttl));
  if (opts.args) args.push(...opts.args);
  const timeoutMs = opts.timeoutMs ?? 30000;

  const proc = spawn(LOCALFORCE_BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(opts.env || {}) },
  });
  let stderr = '';
  let stdout = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > STDERR_KEEP) stderr = stderr.slice(-STDERR_KEEP);
  });
  proc.stdout.setEncoding('utf8');

  let exitInfo = null;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });

  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`localforce did not print its ready line within ${timeoutMs} ms\n` +
        `command: ${LOCALFORCE_BIN} ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${LOCALFORCE_BIN}: ${err.message}`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`localforce exited (code ${code}, signal ${signal}) before it was ready\n` +
        `command: ${LOCALFORCE_BIN} ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
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
  // Keep draining stdout so the child never blocks on a full pipe.
  proc.stdout.on('data', () => {});

  const port = Number(new URL(url).port);
  let stopResult = null;
  const server = {
    url,
    port,
    proc,
    args,
    stderr: () => stderr,
    /**
     * SIGTERM, wait for the exit, and throw unless it exited 0 (ASan leak
     * reports and crashes make it non-zero). Idempotent.
     */
    async stop(timeoutMs2 = 30000) {
      if (stopResult) return stopResult;
      if (!exitInfo) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs2);
        await exited;
        clearTimeout(timer);
      }
      stopResult = exitInfo;
      if (exitInfo.code !== 0) {
        throw new Error(`localforce did not exit 0 on SIGTERM (code ${exitInfo.code}, ` +
          `signal ${exitInfo.signal})\n--- stderr (tail) ---\n${stderr.slice(-8000)}`);
      }
      return exitInfo;
    },
  };
  return server;
}

/** A jsforce OAuth2 config for the fixture's connected app. */
export function oauth2Config(server, extra = {}) {
  return { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, loginUrl: server.url, ...extra };
}

/** A new, logged-in (OAuth username-password) jsforce Connection. */
export async function login(server, opts = {}) {
  const conn = new jsforce.Connection({
    oauth2: oauth2Config(server),
    loginUrl: server.url,
    version: opts.version ?? API_VERSION,
  });
  await conn.login(opts.username ?? ADMIN_USER, opts.password ?? ADMIN_PASS);
  return conn;
}

/**
 * A raw HTTP request to the server with fetch. path is absolute ("/services/...")
 * or a full URL. opts: method, headers, body (string/Buffer, or an object sent as
 * JSON), token (adds Authorization: Bearer), redirect.
 * Returns {status, headers, text, json (parsed when the body is JSON, else undefined)}.
 */
export async function http(server, urlPath, opts = {}) {
  const url = urlPath.startsWith('http') ? urlPath : server.url + urlPath;
  const headers = { ...(opts.headers || {}) };
  let body = opts.body;
  if (body !== undefined && typeof body === 'object' && !Buffer.isBuffer(body) &&
      !(body instanceof URLSearchParams) && !(body instanceof Uint8Array)) {
    body = JSON.stringify(body);
    headers['content-type'] ??= 'application/json';
  }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetch(url, {
    method: opts.method ?? (body !== undefined ? 'POST' : 'GET'),
    headers,
    body,
    redirect: opts.redirect ?? 'follow',
  });
  const text = await res.text();
  let json;
  try {
    json = text.length ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** REST path under the API version: rest('/sobjects') -> /services/data/v59.0/sobjects */
export function rest(p, version = API_VERSION) {
  return `/services/data/v${version}${p}`;
}

function describeResponse(what, res) {
  return `${what}: HTTP ${res.status} ${res.text.slice(0, 2000)}`;
}

/** POST /admin/objects/{obj}/records; returns the number loaded. */
export async function loadRecords(server, obj, records) {
  const res = await http(server, `/admin/objects/${encodeURIComponent(obj)}/records`, {
    method: 'POST', body: records,
  });
  if (res.status !== 200 || !res.json || res.json.loaded !== records.length) {
    throw new Error(describeResponse(`admin load of ${records.length} ${obj} records`, res));
  }
  return res.json.loaded;
}

/** POST /admin/objects/{obj}/fields with a field definition ({name, type, ...}). */
export async function addField(server, obj, def) {
  const res = await http(server, `/admin/objects/${encodeURIComponent(obj)}/fields`, {
    method: 'POST', body: def,
  });
  if (res.status !== 201) throw new Error(describeResponse(`admin add field ${obj}.${def.name}`, res));
  return res.json;
}

/** POST /admin/sessions/expire: every session expires now. */
export async function expireSessions(server) {
  const res = await http(server, '/admin/sessions/expire', { method: 'POST' });
  if (res.status !== 204) throw new Error(describeResponse('admin expire sessions', res));
}

/** loadRecords in chunks of `chunk` records (admin bodies stay a few MB). */
export async function loadRecordsChunked(server, obj, records, chunk = 10000) {
  let loaded = 0;
  for (let i = 0; i < records.length; i += chunk) {
    loaded += await loadRecords(server, obj, records.slice(i, i + chunk));
  }
  return loaded;
}

// --- fault injection (/admin/faults) ----------------------------------------

/**
 * PUT /admin/faults with {rules: [...], expire_sessions?, ...}; returns the
 * parsed answer. Throws unless the server accepted it (200 or 204).
 */
export async function setFaults(server, body) {
  const res = await http(server, '/admin/faults', { method: 'PUT', body });
  if (res.status !== 200 && res.status !== 204) throw new Error(describeResponse('admin set faults', res));
  return res.json;
}

/** GET /admin/faults: {rules: [...], ...}. */
export async function getFaults(server) {
  const res = await http(server, '/admin/faults');
  if (res.status !== 200 || !res.json) throw new Error(describeResponse('admin get faults', res));
  return res.json;
}

/** DELETE /admin/faults: every fault off, parked requests released. */
export async function clearFaults(server) {
  const res = await http(server, '/admin/faults', { method: 'DELETE' });
  if (res.status !== 200 && res.status !== 204) throw new Error(describeResponse('admin clear faults', res));
}

// --- waiting on conditions ----------------------------------------------------

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll fn() until it returns a truthy value (returned) or timeoutMs passes
 * (throws, naming `what` and the last value or error). For waiting on a
 * condition, never for correctness by elapsed time.
 */
export async function waitFor(fn, { timeoutMs = 20000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const shown = last instanceof Error ? last.stack : JSON.stringify(last)?.slice(0, 1000);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${shown})`);
    }
    await sleep(intervalMs);
  }
}

// --- CSV (Bulk API 2.0) -------------------------------------------------------

/**
 * Parse RFC 4180 CSV strictly: fields optionally quoted, "" inside quotes, the
 * given delimiter and line ending ("\n" or "\r\n"). Returns an array of rows
 * (arrays of strings); a trailing line ending does not make an empty row.
 * Throws on a stray quote, an unterminated quoted field, or a bare CR/LF that
 * is not the line ending.
 */
export function parseCsv(text, { delimiter = ',', lineEnding = '\n' } = {}) {
  const rows = [];
  let row = [];
  let i = 0;
  const n = text.length;
  if (n === 0) return rows;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new Error(`unterminated quoted field in row ${rows.length + 1}`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
          i++;
          break;
        }
        field += text[i++];
      }
    } else {
      while (i < n && text[i] !== delimiter && !text.startsWith(lineEnding, i)) {
        if (text[i] === '"') throw new Error(`stray quote in an unquoted field in row ${rows.length + 1}`);
        if (text[i] === '\n' || text[i] === '\r') {
          throw new Error(`bare ${JSON.stringify(text[i])} in row ${rows.length + 1} (line ending is ${JSON.stringify(lineEnding)})`);
        }
        field += text[i++];
      }
    }
    row.push(field);
    if (i >= n) { rows.push(row); return rows; }
    if (text[i] === delimiter) { i++; continue; }
    if (text.startsWith(lineEnding, i)) {
      i += lineEnding.length;
      rows.push(row);
      row = [];
      if (i >= n) return rows;
      continue;
    }
    throw new Error(`unexpected ${JSON.stringify(text[i])} after a quoted field in row ${rows.length + 1}`);
  }
}

/** parseCsv, then the header row and the records as objects keyed by it. */
export function parseCsvRecords(text, opts) {
  const rows = parseCsv(text, opts);
  if (rows.length === 0) throw new Error('empty CSV: no header row');
  const [header, ...data] = rows;
  data.forEach((r, k) => {
    if (r.length !== header.length) {
      throw new Error(`CSV row ${k + 2} has ${r.length} fields, the header ${header.length}`);
    }
  });
  return { header, records: data.map((r) => Object.fromEntries(header.map((h, k) => [h, r[k]]))) };
}

// --- Salesforce IDs ---------------------------------------------------------

const CHECKSUM_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ012345';

/** The 3-character checksum of a 15-character ID (Salesforce's 18-char suffix). */
export function sfidChecksum(id15) {
  let out = '';
  for (let chunk = 0; chunk < 3; chunk++) {
    let bits = 0;
    for (let i = 0; i < 5; i++) {
      const c = id15[chunk * 5 + i];
      if (c >= 'A' && c <= 'Z') bits |= 1 << i;
    }
    out += CHECKSUM_CHARS[bits];
  }
  return out;
}

/** Is this an 18-character ID with a correct checksum (and the given prefix)? */
export function isValidSfid(id, prefix) {
  if (typeof id !== 'string' || !/^[0-9A-Za-z]{18}$/.test(id)) return false;
  if (sfidChecksum(id.slice(0, 15)) !== id.slice(15)) return false;
  return prefix === undefined || id.startsWith(prefix);
}

/**
 * Run fn and return the error it throws (assert.rejects only checks). Fails the
 * test when fn succeeds.
 */
export async function catchError(fn, what = 'the call') {
  try {
    const v = await fn();
    throw Object.assign(new Error(`expected ${what} to fail, it returned ${JSON.stringify(v)?.slice(0, 500)}`),
      { __noError: true });
  } catch (err) {
    if (err && err.__noError) throw err;
    return err;
  }
}

export { jsforce };
