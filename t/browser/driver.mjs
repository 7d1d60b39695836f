// driver.mjs: drives Debian's chromium (/usr/bin/chromium, or $CHROMIUM) with
// playwright-core for the Perl browser tests (t/lib/ScanQA/Browser.pm) and the
// benchmark. It reads one JSON command per line on stdin,
//   {"cmd": "click", "sel": "#pass"}
// runs it on the one page of one browser context, and writes one JSON line per
// command to stdout: {"ok": true, "result": ...} or {"ok": false, "error": "..."}.
// The tests stay in Perl, next to the database checks; this file only knows
// Playwright. Waits use Playwright's own polling with a generous timeout (the
// machine is shared and slow); nothing here measures time except the bench
// commands, whose figures are reported, never asserted.
//
// The browser runs headless with a fresh profile in a temp directory, and with
// everything that would reach the internet turned off (this machine's network is
// closed; a scanner reaches only the warehouse server).
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TIMEOUT = Number(process.env.SCANQA_BROWSER_TIMEOUT_MS || 20000);
const profile = mkdtempSync(join(tmpdir(), 'scanqa-chromium-'));
let browser = null, context = null, page = null;
let tabs = [];
let offlineNow = false;
const seen = new Map();       // url substring -> requests counted
const aborts = new Map();     // url substring -> {n: answers still to lose or delay, delayMs}

async function launch({ base, width = 360, height = 640 }) {
  const args = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${profile}`];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  // launchPersistentContext: --user-data-dir may not be passed to launch().
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: args.filter((a) => !a.startsWith('--user-data-dir')),
    baseURL: base,
    viewport: { width, height },
    deviceScaleFactor: 1,
    hasTouch: true,
    serviceWorkers: 'allow',
  });
  context.setDefaultTimeout(TIMEOUT);
  browser = context;
  page = context.pages()[0] || await context.newPage();
  tabs = [page];
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    // route.fetch() runs in node, outside the page's offline emulation: a page
    // that is offline must not reach the server through it.
    if (offlineNow) return route.abort('internetdisconnected');
    for (const [key, rule] of aborts) {
      if (url.includes(key) && rule.n > 0) {
        rule.n--;
        // The request reaches the server and is answered at once; the answer is
        // lost, or held back for ms before the page gets it.
        const answer = await route.fetch().catch(() => null);
        if (rule.delayMs && answer) {
          await new Promise((r) => setTimeout(r, rule.delayMs));
          return route.fulfill({ response: answer });
        }
        return route.abort('connectionreset');
      }
    }
    return route.fallback();
  });
  context.on('request', (req) => {
    for (const key of seen.keys()) if (req.url().includes(key)) seen.set(key, seen.get(key) + 1);
  });
  return { version: context.browser() ? context.browser().version() : 'chromium' };
}

const commands = {
  launch,
  goto: async ({ path }) => { await page.goto(path, { waitUntil: 'load' }); return page.url(); },
  // Waits until app.js has run (it sets <html data-ready>).
  ready: async () => { await page.waitForSelector('html[data-ready="1"]', { state: 'attached' }); return true; },
  reload: async () => { await page.reload({ waitUntil: 'load' }); return true; },
  // A second tab of the same browser profile (same IndexedDB, same Web Locks);
  // the following commands act on the new tab until tab switches (0 is the first).
  openTab: async () => { page = await context.newPage(); tabs.push(page); return tabs.length - 1; },
  tab: async ({ index }) => { page = tabs[index]; return index; },
  // A killed tab: the page is closed without unload handlers; a new one opens.
  killTab: async () => {
    const i = tabs.indexOf(page);
    await page.close({ runBeforeUnload: false });
    page = tabs[i] = await context.newPage();
    return true;
  },
  offline: async ({ value }) => { offlineNow = !!value; await context.setOffline(offlineNow); return offlineNow; },
  fill: async ({ sel, value }) => { await page.fill(sel, value); return true; },
  // Types like a keyboard-wedge scan engine: the characters, then Enter (or key).
  scan: async ({ sel = '#scan', text, key = 'Enter' }) => {
    await page.focus(sel);
    await page.keyboard.type(text);
    if (key) await page.keyboard.press(key);
    return true;
  },
  press: async ({ key }) => { await page.keyboard.press(key); return true; },
  click: async ({ sel }) => { await page.click(sel); return true; },
  text: async ({ sel }) => (await page.textContent(sel))?.trim() ?? null,
  visible: async ({ sel }) => page.isVisible(sel),
  focused: async () => page.evaluate(() => document.activeElement && document.activeElement.id),
  // Waits until sel's text contains text (or matches the regexp re); returns the text.
  waitText: async ({ sel, text, re }) => {
    const loc = page.locator(sel);
    await loc.filter(re ? { hasText: new RegExp(re) } : { hasText: text }).first().waitFor({ state: 'visible' });
    return (await loc.first().textContent()).trim();
  },
  waitVisible: async ({ sel }) => { await page.waitForSelector(sel, { state: 'visible' }); return true; },
  waitHidden: async ({ sel }) => { await page.waitForSelector(sel, { state: 'hidden' }); return true; },
  // Waits until the JavaScript expression (a promise is awaited) is truthy in the
  // page; returns its value. Polled from here with page.evaluate, which the app's
  // CSP allows, unlike waitForFunction's string predicates (no unsafe-eval).
  waitFor: async ({ js }) => {
    const deadline = Date.now() + TIMEOUT;
    let last;
    for (;;) {
      last = await page.evaluate(js).catch((e) => { if (Date.now() > deadline) throw e; return undefined; });
      if (last) return last;
      if (Date.now() > deadline) throw new Error(`waitFor timed out: ${js} was ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  },
  eval: async ({ js }) => page.evaluate(js),
  evalAsync: async ({ js }) => page.evaluate(`(async () => { ${js} })()`),
  // Count the requests whose URL contains url from now on; lose the next n answers.
  countRequests: async ({ url }) => { seen.set(url, 0); return true; },
  requests: async ({ url }) => seen.get(url) ?? 0,
  loseAnswers: async ({ url, n = 1 }) => { aborts.set(url, { n }); return true; },
  // The next n answers reach the page ms late (the server has answered already):
  // widens the window in which two tabs could both be sending.
  delayAnswers: async ({ url, n = 1, ms }) => { aborts.set(url, { n, delayMs: ms }); return true; },
  dialog: async ({ accept }) => { page.once('dialog', (d) => (accept ? d.accept() : d.dismiss())); return true; },
  screenshot: async ({ path, fullPage = false }) => { await page.screenshot({ path, fullPage }); return path; },
  viewport: async ({ width, height }) => { await page.setViewportSize({ width, height }); return true; },
  close: async () => { await context?.close(); context = null; return true; },
};

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let reply;
  try {
    const msg = JSON.parse(line);
    const f = commands[msg.cmd];
    if (!f) throw new Error(`unknown command ${msg.cmd}`);
    reply = { ok: true, result: (await f(msg)) ?? null };
  } catch (e) {
    reply = { ok: false, error: String(e && e.message || e).split('\n').slice(0, 6).join('\n') };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
await context?.close().catch(() => {});
rmSync(profile, { recursive: true, force: true });
