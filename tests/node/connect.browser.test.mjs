// Browser test of the Stripe Connect OAuth flow: a connect link from POST /stripe/connect, the
// Stripe emulator's consent page, and the service's callback page, in headless Chromium driven by
// Playwright. It saves screenshots of the result pages.
//
// Environment variables:
//   BASE_URL             the local stack's base URL, such as http://127.0.0.1:8080
//   API_KEY              an API key of a test-mode environment of that stack
//   STRIPE_EMULATOR_URL  the Stripe emulator's base URL, such as http://127.0.0.1:12111
//   CHROMIUM_PATH        optional; the Chromium binary (default /usr/bin/chromium, Debian's package)
//   BROWSER_ARTIFACTS_DIR optional; the folder for screenshots (default: a new temporary folder,
//                        kept after the run so the screenshots can be looked at)
// The stack must use the emulator: STRIPE_CONNECT_BASE and STRIPE_API_BASE set to the emulator's
// URL, STRIPE_CLIENT_ID and STRIPE_SECRET_KEY set to the emulator's platform client ID and secret
// key, and STRIPE_REDIRECT_URI set to BASE_URL + /stripe/oauth/callback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set; run these tests through scripts/test.sh`);
  }
  return value;
}

const BASE_URL = requiredEnv('BASE_URL');
const API_KEY = requiredEnv('API_KEY');
const STRIPE_EMULATOR_URL = requiredEnv('STRIPE_EMULATOR_URL');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// The flags keep Chromium from contacting any service of its own: no QUIC, no background
// networking, no component updates, no sync.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const CALLBACK_PATH = '/stripe/oauth/callback';

/** Sends a request to the stack with the API key and returns the status and the JSON body. */
async function api(method, pathname) {
  const response = await fetch(new URL(pathname, BASE_URL), {
    method,
    headers: { Authorization: `Bearer ${API_KEY}` },
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Returns how many code exchanges (POST /oauth/token) the emulator has received. */
async function tokenRequestCount() {
  const response = await fetch(new URL('/_emulator/requests', STRIPE_EMULATOR_URL));
  assert.equal(response.status, 200, 'the emulator request log loads');
  const { requests } = await response.json();
  return requests.filter((request) => request.path === '/oauth/token').length;
}

/** Asks the stack for a connect link and checks that it points at the emulator. */
async function connectLink() {
  const { status, body } = await api('POST', '/stripe/connect');
  assert.equal(status, 201, `POST /stripe/connect: ${JSON.stringify(body)}`);
  assert.ok(
    body.authorize_url.startsWith(`${STRIPE_EMULATOR_URL.replace(/\/$/, '')}/oauth/authorize?`),
    `authorize_url ${body.authorize_url} points at the emulator`,
  );
  return body.authorize_url;
}

describe('Stripe Connect in a browser', () => {
  let workDir;
  let artifactsDir;
  let context;
  let page;

  before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'connect-browser-'));
    artifactsDir = process.env.BROWSER_ARTIFACTS_DIR || workDir;
    await mkdir(artifactsDir, { recursive: true });
    // A fresh profile for every run; launchPersistentContext passes it as --user-data-dir.
    context = await chromium.launchPersistentContext(path.join(workDir, 'profile'), {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1000, height: 700 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    // Starts from a disconnected environment; DELETE is harmless when nothing is connected.
    const reset = await api('DELETE', '/stripe/connection');
    assert.equal(reset.status, 200, `DELETE /stripe/connection: ${JSON.stringify(reset.body)}`);
  });

  after(async () => {
    await context?.close();
    if (workDir) {
      await rm(path.join(workDir, 'profile'), { recursive: true, force: true });
    }
    await api('DELETE', '/stripe/connection').catch(() => {});
  });

  test('approval connects and shows the result page', async (t) => {
    const exchangesBefore = await tokenRequestCount();
    await page.goto(await connectLink());
    assert.equal(await page.title(), 'Connect your Stripe account – Stripe emulator');

    const callbackResponse = page.waitForResponse((response) =>
      new URL(response.url()).pathname === CALLBACK_PATH,
    );
    const subresources = [];
    page.on('request', (request) => {
      if (request.resourceType() !== 'document') {
        subresources.push(request.url());
      }
    });
    await page.getByRole('button', { name: 'Approve' }).click();
    const response = await callbackResponse;
    await page.waitForLoadState('load');

    assert.equal(response.status(), 200);
    const headers = response.headers();
    assert.equal(headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(headers['cache-control'], 'no-store');
    assert.equal(new URL(page.url()).pathname, CALLBACK_PATH);
    assert.equal(await page.title(), 'Stripe is connected');
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Stripe is connected');
    assert.match(await page.locator('main').innerText(), /Stripe is connected\. You can close this tab\./);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await page.locator('script').count(), 0, 'the page has no JavaScript');
    assert.deepEqual(subresources, [], 'the page loads no other resources');

    const screenshot = path.join(artifactsDir, 'connect-result.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    t.diagnostic(`screenshot: ${screenshot}`);

    const status = await api('GET', '/stripe/connection');
    assert.equal(status.status, 200);
    assert.equal(status.body.connected, true);
    assert.match(status.body.account_id, /^acct_/);
    assert.equal(status.body.livemode, false);

    // Reloading the callback is the same callback again: the same page, and no second exchange.
    const reloaded = await page.reload();
    assert.equal(reloaded.status(), 200);
    assert.equal(await page.title(), 'Stripe is connected');
    assert.equal(await tokenRequestCount(), exchangesBefore + 1, 'the code was exchanged once');
  });

  test('denial shows the cancelled page and connects nothing', async (t) => {
    const disconnected = await api('DELETE', '/stripe/connection');
    assert.equal(disconnected.status, 200);
    assert.equal(disconnected.body.connected, false);
    const exchangesBefore = await tokenRequestCount();

    await page.goto(await connectLink());
    const callbackResponse = page.waitForResponse((response) =>
      new URL(response.url()).pathname === CALLBACK_PATH,
    );
    await page.getByRole('button', { name: 'Deny' }).click();
    const response = await callbackResponse;
    await page.waitForLoadState('load');

    assert.equal(response.status(), 200);
    assert.equal(await page.title(), 'Connection cancelled');
    assert.match(await page.locator('main').innerText(), /Connection cancelled/);
    const screenshot = path.join(artifactsDir, 'connect-cancelled.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    t.diagnostic(`screenshot: ${screenshot}`);

    const status = await api('GET', '/stripe/connection');
    assert.equal(status.body.connected, false);
    assert.equal(await tokenRequestCount(), exchangesBefore, 'a denial exchanges no code');
  });
});
