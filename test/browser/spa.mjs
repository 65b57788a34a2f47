// Drives the reference client in headless Chromium against a running isis.
// Env: API_URL, PAGE_URL (an allowed origin), EVIL_URL (an origin not in
// CORS_ALLOWED_ORIGINS), ARTIFACTS (screenshots). Exit 0 when every step passes.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const { API_URL, PAGE_URL, EVIL_URL } = process.env;
const ARTIFACTS = process.env.ARTIFACTS || join(tmpdir(), 'isis-artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

// A fresh --user-data-dir every run (playwright passes it for a persistent
// context), removed when the run ends, whatever the outcome.
const profile = mkdtempSync(join(tmpdir(), 'isis-chromium-'));
process.on('exit', () => rmSync(profile, { recursive: true, force: true }));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let passed = 0;
let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err.message.replace(/\s+/g, ' ').slice(0, 300)}`);
  }
}

const page = await browser.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });

await page.goto(`${PAGE_URL}/?api=${encodeURIComponent(API_URL)}`);
const text = (sel) => page.locator(sel).textContent();
const data = (sel, key) => page.locator(sel).getAttribute(`data-${key}`);
const click = async (sel) => { await page.click(sel); await page.waitForLoadState('networkidle'); };
const email = `browser-${Date.now()}@example.com`;
const password = 'browser-pass-2026!';

await step('register', async () => {
  await page.fill('#reg-email', email);
  await page.fill('#reg-password', password);
  await page.fill('#reg-first', 'Navegador');
  await click('#reg-submit');
  await page.waitForFunction(() => document.querySelector('#reg-status').textContent.startsWith('registered'));
});

await step('a validation error is readable (400 with field errors)', async () => {
  await click('#reg-submit'); // the same email again
  await page.waitForFunction(() => document.querySelector('#error').dataset.status === '400');
  assert.equal(await data('#error', 'code'), 'invalid');
  assert.match(await text('#error'), /already exists/);
});

await step('wrong password: 401 envelope with request id, header exposed', async () => {
  await page.fill('#login-email', email);
  await page.fill('#login-password', 'not-the-password');
  await click('#login-submit');
  await page.waitForFunction(() => document.querySelector('#error').dataset.status === '401');
  assert.equal(await data('#error', 'code'), 'authentication_failed');
  const rid = await data('#error', 'request-id');
  assert.ok(rid && rid.length >= 16, `request_id ${rid}`);
  assert.equal(await data('#error', 'header-request-id'), rid, 'X-Request-ID header readable and equal to request_id');
});

// Chromium does not show preflights to the page: the Go side checks the
// server's log for them; here, an authorized cross-origin GET succeeding is
// only possible after a successful preflight.
await step('log in and show the current user (Authorization header, cross-origin)', async () => {
  await page.fill('#login-password', password);
  await click('#login-submit');
  await page.waitForFunction((e) => document.querySelector('#who').textContent === e, email);
  await click('#me-load');
  await page.waitForFunction(() => document.querySelector('#me').textContent.includes('Navegador'));
  assert.ok((await text('#me')).startsWith(email));
});

await step('departments, then municipalities of one following next links', async () => {
  await click('#departments-load');
  await page.waitForFunction(() => document.querySelector('#departments').dataset.count === '33');
  await page.selectOption('#departments', '05');
  await click('#municipalities-load');
  await page.waitForFunction(() => document.querySelector('#mun-count').dataset.count === '125');
  assert.equal(await data('#mun-pages', 'pages'), '7');
  assert.match(await text('#municipalities'), /05001 Medellín/);
});

await step('an unknown department: 404 readable', async () => {
  await page.fill('#dept-code', '00');
  await click('#municipalities-load');
  await page.waitForFunction(() => document.querySelector('#error').dataset.status === '404');
  assert.equal(await data('#error', 'code'), 'not_found');
  await page.fill('#dept-code', '');
});

await step('refresh the access token', async () => {
  await page.waitForTimeout(1100); // a new iat, so a new token
  await click('#refresh');
  await page.waitForFunction(() => document.querySelector('#refresh-status').textContent === 'access token refreshed');
  await click('#me-load');
  assert.match(await text('#me'), /Navegador/);
});

await page.screenshot({ path: join(ARTIFACTS, 'spa.png'), fullPage: true });

await step('log out: the refresh token is dead', async () => {
  await click('#logout');
  await page.waitForFunction(() => document.querySelector('#logout-status').textContent === 'logged out');
  await click('#refresh');
  await page.waitForFunction(() => document.querySelector('#error').dataset.status === '401');
  assert.equal(await data('#error', 'code'), 'token_not_valid');
});

await step('throttled: 429 readable with Retry-After', async () => {
  await page.fill('#login-password', 'wrong-again');
  for (let i = 0; i < 30; i++) {
    await click('#login-submit');
    await page.waitForFunction(() => document.querySelector('#error').dataset.status !== undefined);
    if (await data('#error', 'status') === '429') break;
  }
  assert.equal(await data('#error', 'status'), '429');
  assert.equal(await data('#error', 'code'), 'throttled');
  const ra = Number(await data('#error', 'retry-after'));
  assert.ok(ra > 0, `Retry-After ${ra}`);
});

await page.screenshot({ path: join(ARTIFACTS, 'spa-errors.png'), fullPage: true });

await step('another origin cannot read any answer', async () => {
  const evil = await browser.newPage();
  await evil.goto(`${EVIL_URL}/?api=${encodeURIComponent(API_URL)}`);
  for (const path of ['/api/health/', '/api/departments/', '/api/nope/']) {
    const r = await evil.evaluate((p) => window.isisProbe(p), path);
    assert.equal(r.ok, false, `${path} was readable from another origin: ${JSON.stringify(r)}`);
  }
  const allowed = await page.evaluate(() => window.isisProbe('/api/health/'));
  assert.equal(allowed.ok, true, 'the allowed origin cannot read /api/health/');
  await evil.close();
});

await step('the API docs page renders the OpenAPI operations', async () => {
  const docs = await browser.newPage();
  await docs.goto(`${API_URL}/static/docs/`);
  const schema = await (await fetch(`${API_URL}/api/schema/`)).json();
  const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
  let ops = 0; // path items also hold extensions (x-…): count the operations
  for (const item of Object.values(schema.paths)) ops += Object.keys(item).filter((k) => methods.includes(k)).length;
  // swagger-ui draws only the operations in view (a long document is
  // virtualized): some are drawn, and it has read every one.
  await docs.waitForSelector('.opblock', { timeout: 20000 });
  const read = await docs.evaluate(() => window.ui.specSelectors.operations().size);
  assert.equal(read, ops, `swagger-ui read ${read} operations, the document has ${ops}`);
  assert.match(await docs.locator('.info .title').textContent(), /isis API/);
  await docs.screenshot({ path: join(ARTIFACTS, 'docs.png') });
  await docs.close();
});

await browser.close();
console.log(`browser: ${passed} passed, ${failed} failed (screenshots in ${ARTIFACTS})`);
process.exit(failed === 0 ? 0 : 1);
