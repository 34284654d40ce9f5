// The stripe-connect function's compiled binary, driven through a local Lambda Runtime API, with
// the Stripe emulator as Stripe. Each event shape runs the whole OAuth flow: connect link,
// approval on the emulator, callback, status and disconnect.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { SHAPES, jsonBody, request } from './lib/events.mjs';
import { emulatorControl } from './lib/stripe.mjs';
import {
  assertNoSecretInLogs,
  assertTableAccessAllowed,
  createEnvironment,
  startDynamoDbProxy,
  startLambda,
  startStripeEmulator,
} from './lib/context.mjs';

const BINARY = 'stripe-connect';

let proxy;
let emulator;
let fn;

before(async () => {
  proxy = await startDynamoDbProxy();
  emulator = await startStripeEmulator();
  fn = await startLambda(BINARY, {
    overrides: {
      DYNAMODB_ENDPOINT: proxy.endpoint,
      STRIPE_API_BASE: emulator.url,
      STRIPE_CONNECT_BASE: emulator.url,
    },
  });
});

after(async () => {
  await fn?.stop();
  await proxy?.close();
  await emulator?.stop();
});

/** Percent-encodes every byte of `text`, so that even unreserved characters are escaped. */
function encodeEveryByte(text) {
  return [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/**
 * Approves the authorize URL on the emulator as a browser would, and returns the query string of
 * the redirect to the callback, parsed.
 */
async function approve(authorizeUrl) {
  const url = new URL(authorizeUrl);
  assert.equal(url.origin, new URL(emulator.url).origin, 'the connect link does not point at STRIPE_CONNECT_BASE');
  const form = new URLSearchParams(url.searchParams);
  form.set('decision', 'approve');
  const response = await fetch(new URL('/oauth/authorize/decision', emulator.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    redirect: 'manual',
  });
  assert.equal(response.status, 302, await response.text());
  const location = new URL(response.headers.get('location'));
  assert.equal(`${location.origin}${location.pathname}`, 'https://api.example.test/stripe/oauth/callback');
  return location.searchParams;
}

describe('Stripe Connect OAuth through each event shape', () => {
  for (const shape of SHAPES) {
    test(`${shape}: link, approve, callback, status and disconnect`, async () => {
      const { api_key: apiKey } = await createEnvironment(`lambda-connect-${shape}`);
      const auth = { Authorization: `Bearer ${apiKey}` };

      const linked = await request(fn, shape, { method: 'POST', path: '/stripe/connect', headers: auth });
      assert.equal(linked.status, 201, linked.body.toString());
      const { authorize_url: authorizeUrl } = jsonBody(linked);
      const redirect = await approve(authorizeUrl);
      const state = redirect.get('state');
      const code = redirect.get('code');
      assert.ok(state, 'the redirect carries no state');
      assert.ok(code, 'the redirect carries no code');

      // Encoded twice, the state decodes once to a string with '%' in it, which is no state: only
      // a second decoding would find the real one and consume it.
      const twice = await request(fn, shape, {
        method: 'GET',
        path: '/stripe/oauth/callback',
        query: `code=${encodeURIComponent(code)}&scope=read_write&state=${encodeEveryByte(encodeEveryByte(state))}`,
      });
      assert.equal(twice.status, 400, twice.body.toString());

      // Encoded once, every byte escaped: one decoding gives the state back.
      const once = await request(fn, shape, {
        method: 'GET',
        path: '/stripe/oauth/callback',
        query: `code=${encodeURIComponent(code)}&scope=read_write&state=${encodeEveryByte(state)}`,
      });
      assert.equal(once.status, 200, once.body.toString());
      assert.match(once.headers['content-type']?.[0] ?? '', /^text\/html/);
      assert.equal(once.payload.isBase64Encoded, false, 'the HTML page was sent base64-encoded');
      assert.match(once.body.toString(), /Stripe is connected\. You can close this tab\./);

      const status = await request(fn, shape, { method: 'GET', path: '/stripe/connection', headers: auth });
      assert.equal(status.status, 200, status.body.toString());
      assert.equal(jsonBody(status).connected, true);

      const disabled = await request(fn, shape, {
        method: 'PUT',
        path: '/stripe/connection',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ entitlements_enabled: false }),
        base64: true,
      });
      assert.equal(disabled.status, 200, disabled.body.toString());
      assert.equal(jsonBody(disabled).entitlements_enabled, false);

      const disconnected = await request(fn, shape, { method: 'DELETE', path: '/stripe/connection', headers: auth });
      assert.equal(disconnected.status, 200, disconnected.body.toString());
      assert.equal(jsonBody(disconnected).connected, false);
    });

    test(`${shape}: error_description is decoded exactly once`, async () => {
      // `%2B` is a '+', a bare '+' a space, and `%2520` decodes once to `%20`.
      const response = await request(fn, shape, {
        method: 'GET',
        path: '/stripe/oauth/callback',
        query: 'error=some_error&error_description=a%2Bb+c%2520d',
      });
      assert.equal(response.status, 400, response.body.toString());
      assert.match(response.body.toString(), /a\+b c%20d/);
    });
  }
});

describe('stripe-connect deployment rules', () => {
  test('calls only allowed DynamoDB actions', (context) => {
    assert.ok(proxy.requests.length > 0, 'the function made no DynamoDB request');
    assertTableAccessAllowed(proxy, BINARY, context);
  });

  test('exchanged each code once', async () => {
    const { requests } = await emulatorControl(emulator.url, 'GET', '/_emulator/requests');
    const exchanges = requests.filter((entry) => entry.path === '/oauth/token');
    assert.equal(exchanges.length, SHAPES.length);
    assert.ok(exchanges.every((entry) => entry.status === 200), 'a code exchange failed');
  });

  test('prints no secret', () => {
    assertNoSecretInLogs(fn);
  });
});
