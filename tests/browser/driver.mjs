// A headless browser for the Python tests (tests/e2e/lib/browser.py), driven over
// stdin/stdout with one JSON object per line.
//
//   request:  {"id": 1, "cmd": "goto", "args": {"url": "http://..."}}
//   answer:   {"id": 1, "ok": true, "value": ...}  or  {"id": 1, "ok": false, "error": "..."}
//
// It launches Debian's chromium (CHROMIUM, default /usr/bin/chromium) through
// playwright-core, never a browser of its own. Commands act on the current page;
// `new_context` starts a fresh one (viewport, HTTP credentials). Every wait has a
// timeout in milliseconds (default 10000) and fails with what it waited for.
// The browser's console errors and page errors are collected (`console`).
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const EXECUTABLE = process.env.CHROMIUM || '/usr/bin/chromium';
const DEFAULT_TIMEOUT = 10000;

let browser = null;
let context = null;
let page = null;
let messages = [];

async function launch() {
  browser = await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-first-run', '--no-default-browser-check'],
  });
}

async function newContext(a = {}) {
  if (context) await context.close();
  const opts = {
    viewport: a.viewport || { width: 1280, height: 860 },
    deviceScaleFactor: a.scale || 1,
    acceptDownloads: true,
    locale: 'en-US',
    timezoneId: a.timezone || 'UTC',
    reducedMotion: 'reduce',
  };
  if (a.username !== undefined || a.password !== undefined) {
    opts.httpCredentials = { username: a.username || 'user', password: a.password || '' };
  }
  if (a.is_mobile) {
    opts.isMobile = true;
    opts.hasTouch = true;
  }
  context = await browser.newContext(opts);
  context.setDefaultTimeout(DEFAULT_TIMEOUT);
  page = await context.newPage();
  messages = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') messages.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
  return true;
}

const to = (a) => (a.timeout === undefined ? DEFAULT_TIMEOUT : a.timeout);
const loc = (a) => {
  let l = page.locator(a.selector);
  if (a.has_text !== undefined) l = l.filter({ hasText: a.has_text });
  return a.nth === undefined ? l.first() : l.nth(a.nth);
};

const commands = {
  async new_context(a) {
    return newContext(a);
  },
  async goto(a) {
    const r = await page.goto(a.url, { waitUntil: a.wait_until || 'load', timeout: to(a) });
    return r ? { status: r.status(), url: page.url() } : { status: null, url: page.url() };
  },
  async url() {
    return page.url();
  },
  async title() {
    return page.title();
  },
  async set_viewport(a) {
    await page.setViewportSize({ width: a.width, height: a.height });
    return true;
  },
  async click(a) {
    await loc(a).click({ timeout: to(a) });
    return true;
  },
  async fill(a) {
    await loc(a).fill(a.value, { timeout: to(a) });
    return true;
  },
  async press(a) {
    // a key on the element matched by selector, or on whatever has the focus
    if (a.selector) await loc(a).press(a.key, { timeout: to(a) });
    else await page.keyboard.press(a.key);
    return true;
  },
  async check(a) {
    await loc(a).setChecked(a.value !== false, { timeout: to(a) });
    return true;
  },
  async select(a) {
    return loc(a).selectOption(a.value, { timeout: to(a) });
  },
  async upload(a) {
    await loc(a).setInputFiles(a.path, { timeout: to(a) });
    return true;
  },
  async download(a) {
    // click selector and save the file it downloads to path
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: to(a) }), loc(a).click({ timeout: to(a) })]);
    await dl.saveAs(a.path);
    return dl.suggestedFilename();
  },
  async text(a) {
    return loc(a).innerText({ timeout: to(a) });
  },
  async texts(a) {
    return page.locator(a.selector).allInnerTexts();
  },
  async value(a) {
    return loc(a).inputValue({ timeout: to(a) });
  },
  async attr(a) {
    return loc(a).getAttribute(a.name, { timeout: to(a) });
  },
  async count(a) {
    return page.locator(a.selector).count();
  },
  async visible(a) {
    return loc(a).isVisible();
  },
  async checked(a) {
    return loc(a).isChecked({ timeout: to(a) });
  },
  async wait_for(a) {
    // selector (optionally with text inside it), or text anywhere; state: visible|hidden|attached|detached
    if (a.selector) {
      await loc(a).waitFor({ state: a.state || 'visible', timeout: to(a) });
    } else {
      await page.getByText(a.text, { exact: !!a.exact }).first().waitFor({ state: a.state || 'visible', timeout: to(a) });
    }
    return true;
  },
  async wait_url(a) {
    await page.waitForURL((u) => u.href.includes(a.contains), { timeout: to(a) });
    return page.url();
  },
  async eval(a) {
    // a function body's source, called with arg: "(arg) => ..."
    return page.evaluate(`(${a.fn})(${JSON.stringify(a.arg === undefined ? null : a.arg)})`);
  },
  async focused() {
    return page.evaluate(() => {
      const e = document.activeElement;
      if (!e || e === document.body) return null;
      return {
        tag: e.tagName.toLowerCase(),
        id: e.id || null,
        text: (e.innerText || e.value || '').trim().slice(0, 80),
        label: e.getAttribute('aria-label'),
        href: e.getAttribute('href'),
        in_nav: !!e.closest('nav'),
        in_main: !!e.closest('main'),
      };
    });
  },
  async screenshot(a) {
    await page.screenshot({ path: a.path, fullPage: a.full_page !== false, animations: 'disabled' });
    return a.path;
  },
  async axe(a) {
    await page.evaluate(AXE_SOURCE);
    const res = await page.evaluate(async (opts) => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, opts);
      return r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
      }));
    }, a.options || { resultTypes: ['violations'] });
    return res;
  },
  async console() {
    const m = messages;
    messages = [];
    return m;
  },
  async close() {
    if (browser) await browser.close();
    browser = null;
    return true;
  },
};

async function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return { id: null, ok: false, error: 'bad request: ' + e.message };
  }
  const fn = commands[req.cmd];
  if (!fn) return { id: req.id, ok: false, error: 'unknown command ' + req.cmd };
  try {
    if (!browser && req.cmd !== 'close') await launch();
    if (!page && req.cmd !== 'new_context' && req.cmd !== 'close') await newContext({});
    const value = await fn(req.args || {});
    return { id: req.id, ok: true, value: value === undefined ? null : value };
  } catch (e) {
    return { id: req.id, ok: false, error: String((e && e.message) || e) };
  }
}

// One command at a time, in order.
const rl = createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    const answer = await handle(line);
    process.stdout.write(JSON.stringify(answer) + '\n');
  });
});
rl.on('close', () => {
  chain.then(async () => {
    if (browser) await browser.close().catch(() => {});
    process.exit(0);
  });
});
process.stdout.write(JSON.stringify({ id: 0, ok: true, value: 'ready' }) + '\n');
