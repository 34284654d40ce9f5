// Black-box tests of POST /webhooks/stripe. Payloads are signed with the official Stripe Node
// library (stripe.webhooks.generateTestHeaderString), exactly as Stripe signs deliveries, and
// posted to a running local stack. Environment variables:
//   BASE_URL                the stack's base URL, such as http://127.0.0.1:8080
//   API_KEY                 an API key of a test-mode environment of that stack
//   STRIPE_WEBHOOK_SECRETS  the stack's webhook signing secrets, comma-separated; the first signs
//   STRIPE_EMULATOR_URL     the Stripe emulator's base URL, such as http://127.0.0.1:12111
// The stack must use the emulator: STRIPE_API_BASE and STRIPE_CONNECT_BASE set to its URL,
// STRIPE_SECRET_KEY and STRIPE_CLIENT_ID set to its platform key and client ID, and
// STRIPE_REDIRECT_URI set to BASE_URL + /stripe/oauth/callback.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set; run these tests through scripts/test.sh`);
  }
  return value;
}

const BASE_URL = requiredEnv('BASE_URL');
const API_KEY = requiredEnv('API_KEY');
const SECRET = requiredEnv('STRIPE_WEBHOOK_SECRETS').split(',')[0].trim();
const STRIPE_EMULATOR_URL = requiredEnv('STRIPE_EMULATOR_URL');

// The library only signs here; it never calls Stripe, so the key is a placeholder.
const stripe = new Stripe('sk_test_placeholder');

// Keeps the IDs of this run apart from earlier runs on the same store.
const RUN = randomUUID().replaceAll('-', '').slice(0, 12);
let counter = 0;

function unique(prefix) {
  counter += 1;
  return `${prefix}_${RUN}${counter}`;
}

/** A snapshot event as Stripe renders it, serialized once: the signature covers these bytes. */
function eventPayload(type, { account, livemode = false, object = {} } = {}) {
  const event = {
    id: unique('evt'),
    object: 'event',
    api_version: '2026-09-30.endive',
    created: Math.floor(Date.now() / 1000),
    data: { object },
    livemode,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
  if (account) {
    event.account = account;
  }
  return JSON.stringify(event);
}

function summaryObject(customer, lookupKeys) {
  return {
    object: 'entitlements.active_entitlement_summary',
    customer,
    livemode: false,
    entitlements: {
      object: 'list',
      data: lookupKeys.slice(0, 10).map((key) => ({
        id: unique('ent'),
        object: 'entitlements.active_entitlement',
        feature: unique('feat'),
        livemode: false,
        lookup_key: key,
      })),
      has_more: lookupKeys.length > 10,
      url: `/v1/customer/${customer}/entitlements`,
    },
  };
}

/** Posts a payload to the webhook route and returns the status, headers and JSON body. */
async function deliver(payload, signature) {
  const headers = { 'Content-Type': 'application/json; charset=utf-8' };
  if (signature !== undefined) {
    headers['Stripe-Signature'] = signature;
  }
  const response = await fetch(new URL('/webhooks/stripe', BASE_URL), {
    method: 'POST',
    headers,
    body: payload,
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

function sign(payload, options = {}) {
  return stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET, ...options });
}

/** Sends a request to the stack with the API key. */
async function api(method, pathname, body) {
  const response = await fetch(new URL(pathname, BASE_URL), {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Calls the emulator's control API. */
async function emulator(method, pathname, body) {
  const response = await fetch(new URL(pathname, STRIPE_EMULATOR_URL), {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${pathname}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/**
 * Connects the API key's environment to a new emulator account through the OAuth flow, without a
 * browser: the consent form is posted directly and the redirect followed to the stack's callback.
 */
async function connectNewAccount() {
  const current = await api('GET', '/stripe/connection');
  assert.equal(current.status, 200, JSON.stringify(current.body));
  if (current.body.connected) {
    const { status } = await api('DELETE', '/stripe/connection');
    assert.ok(status < 300, `DELETE /stripe/connection answered ${status}`);
  }
  const account = (await emulator('POST', '/_emulator/accounts', {})).id;
  const link = await api('POST', '/stripe/connect');
  assert.equal(link.status, 201, JSON.stringify(link.body));
  const authorizeUrl = new URL(link.body.authorize_url);
  const form = new URLSearchParams(authorizeUrl.searchParams);
  form.set('decision', 'approve');
  form.set('stripe_user_account', account);
  const decision = await fetch(new URL('/oauth/authorize/decision', STRIPE_EMULATOR_URL), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form,
    redirect: 'manual',
  });
  assert.equal(decision.status, 302, 'the emulator redirects to the callback');
  const callback = await fetch(decision.headers.get('location'), { redirect: 'manual' });
  assert.equal(callback.status, 200, `the callback page: ${await callback.text()}`);
  const status = await api('GET', '/stripe/connection');
  assert.equal(status.body.connected, true);
  assert.equal(status.body.account_id, account);
  return account;
}

describe('POST /webhooks/stripe signatures', () => {
  test('accepts an event signed by the official library', async () => {
    const payload = eventPayload('invoice.some_future_event', { account: unique('acct') });
    const signature = sign(payload);
    // The library itself accepts what it signed, so the payload and header are Stripe's format.
    assert.equal(stripe.webhooks.constructEvent(payload, signature, SECRET).type, 'invoice.some_future_event');

    const { status, headers, body } = await deliver(payload, signature);
    assert.equal(status, 200, JSON.stringify(body));
    assert.match(headers.get('content-type'), /^application\/json/);
    assert.ok(headers.get('x-request-id'), 'X-Request-ID is set');
    assert.deepEqual(body, { received: true, result: 'ignored', reason: 'unhandled_event_type' });
  });

  test('rejects a signature made with another secret', async () => {
    const payload = eventPayload('invoice.paid', { account: unique('acct') });
    const signature = stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_not_configured' });
    const { status, body } = await deliver(payload, signature);
    assert.equal(status, 400);
    assert.equal(body.code, 'invalid_signature');
  });

  test('rejects a signature with only the v0 scheme', async () => {
    const payload = eventPayload('invoice.paid', { account: unique('acct') });
    const { status } = await deliver(payload, sign(payload, { scheme: 'v0' }));
    assert.equal(status, 400);
  });

  test('rejects timestamps outside 300 seconds', async () => {
    const payload = eventPayload('invoice.paid', { account: unique('acct') });
    const now = Math.floor(Date.now() / 1000);
    for (const timestamp of [now - 301, now + 301]) {
      const { status } = await deliver(payload, sign(payload, { timestamp }));
      assert.equal(status, 400, `timestamp offset ${timestamp - now} s`);
    }
  });

  test('rejects a body changed after signing', async () => {
    const payload = eventPayload('invoice.paid', { account: unique('acct') });
    const signature = sign(payload);
    const { status } = await deliver(payload.replace('"livemode":false', '"livemode":true'), signature);
    assert.equal(status, 400);
  });

  test('rejects a delivery without a signature', async () => {
    const { status, body } = await deliver(eventPayload('invoice.paid'), undefined);
    assert.equal(status, 400);
    assert.equal(body.code, 'invalid_signature');
  });

  test('acknowledges an event of an account no environment connected', async () => {
    const customer = unique('cus');
    const payload = eventPayload('entitlements.active_entitlement_summary.updated', {
      account: unique('acct'),
      object: summaryObject(customer, ['basic']),
    });
    const { status, body } = await deliver(payload, sign(payload));
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.reason, 'account_not_connected');
  });
});

describe('POST /webhooks/stripe with a connected account', () => {
  test('applies entitlement events once and honours deauthorization', async () => {
    const account = await connectNewAccount();
    const customer = unique('cus');
    const lookupKeys = Array.from({ length: 25 }, (_, index) => `feature_${String(index).padStart(2, '0')}`);
    await emulator('PUT', `/_emulator/accounts/${account}/customers/${customer}/entitlements`, {
      lookup_keys: lookupKeys,
    });
    const created = await api('POST', '/organizations', { name: unique('Webhook Org') });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const linked = await api('PUT', `/organizations/${created.body.id}`, { stripe_customer_id: customer });
    assert.equal(linked.status, 200, JSON.stringify(linked.body));

    await emulator('DELETE', '/_emulator/requests');
    const payload = eventPayload('entitlements.active_entitlement_summary.updated', {
      account,
      object: summaryObject(customer, lookupKeys),
    });
    const signature = sign(payload);
    const first = await deliver(payload, signature);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.result, 'applied');

    // The embedded list holds 10 entitlements; the service read all 25 from the list endpoint.
    const { requests } = await emulator('GET', '/_emulator/requests');
    const lists = requests.filter((request) => request.path === '/v1/entitlements/active_entitlements');
    assert.equal(lists.length, 1, JSON.stringify(lists));
    assert.equal(lists[0].stripe_account, account);
    assert.deepEqual(
      lists[0].query_params.filter(([name]) => name === 'limit'),
      [['limit', '100']],
    );

    const again = await deliver(payload, sign(payload));
    assert.equal(again.status, 200);
    assert.equal(again.body.result, 'duplicate', 'a redelivery changes nothing');

    const deauthorization = eventPayload('account.application.deauthorized', {
      account,
      object: { id: 'ca_emulator', object: 'application', name: null },
    });
    const ended = await deliver(deauthorization, sign(deauthorization));
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    assert.equal(ended.body.result, 'applied');
    const status = await api('GET', '/stripe/connection');
    assert.equal(status.body.connected, false, 'the deauthorization ended the connection');
  });
});
