// The four function binaries together, each behind its own Runtime API and its own recording
// DynamoDB proxy, with the Stripe emulator as Stripe. The test connects an account, links a
// customer, signs in, changes the customer's entitlements with a webhook, refreshes, and
// disconnects with a deauthorization webhook. It exercises the write paths the other files leave out, so the
// recorded DynamoDB actions of each function cover its main flows.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { jsonBody, request } from './lib/events.mjs';
import { TEST_SECRETS } from './lib/function-process.mjs';
import { emulatorControl } from './lib/stripe.mjs';
import {
  assertNoSecretInLogs,
  assertTableAccessAllowed,
  createEnvironment,
  startDynamoDbProxy,
  startLambda,
  startStripeEmulator,
} from './lib/context.mjs';

const SHAPE = 'apigw-http-v2';
const BINARIES = ['organizations', 'sessions', 'stripe-webhooks', 'stripe-connect'];
const WEBHOOK_SECRET = TEST_SECRETS.STRIPE_WEBHOOK_SECRETS.split(',').at(-1);
const PASSWORD = 'flow password 0123456789';
const CUSTOMER = 'cus_lambdaFlow';

let emulator;
const proxies = {};
const functions = {};
let environment;

before(async () => {
  emulator = await startStripeEmulator();
  environment = await createEnvironment('lambda-flow');
  for (const binary of BINARIES) {
    proxies[binary] = await startDynamoDbProxy();
    functions[binary] = await startLambda(binary, {
      overrides: {
        DYNAMODB_ENDPOINT: proxies[binary].endpoint,
        STRIPE_API_BASE: emulator.url,
        STRIPE_CONNECT_BASE: emulator.url,
      },
    });
  }
});

after(async () => {
  for (const binary of BINARIES) {
    await functions[binary]?.stop();
    await proxies[binary]?.close();
  }
  await emulator?.stop();
});

function call(binary, spec) {
  return request(functions[binary], SHAPE, spec);
}

function jsonRequest(method, path, body, headers = {}) {
  return {
    method,
    path,
    headers: { Authorization: `Bearer ${environment.api_key}`, 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
    base64: true,
  };
}

function entitlementsClaim(accessToken) {
  return JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString('utf8')).entitlements;
}

/** Builds and signs an event on the emulator, then delivers it through the webhooks binary. */
async function deliverEvent(body) {
  const built = await emulatorControl(emulator.url, 'POST', '/_emulator/events', { secret: WEBHOOK_SECRET, ...body });
  const response = await call('stripe-webhooks', {
    method: 'POST',
    path: '/webhooks/stripe',
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Stripe-Signature': built.stripe_signature },
    body: built.payload,
    base64: true,
  });
  assert.equal(response.status, 200, response.body.toString());
  return jsonBody(response);
}

test('connect, link, sign in, webhook update, refresh and deauthorization', async () => {
  // Connect a Stripe account through the OAuth flow.
  const link = jsonBody(await call('stripe-connect', jsonRequest('POST', '/stripe/connect', {})));
  const authorize = new URL(link.authorize_url);
  const form = new URLSearchParams(authorize.searchParams);
  form.set('decision', 'approve');
  const approval = await fetch(new URL('/oauth/authorize/decision', emulator.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    redirect: 'manual',
  });
  assert.equal(approval.status, 302);
  const callbackQuery = new URL(approval.headers.get('location')).search.slice(1);
  const page = await call('stripe-connect', { method: 'GET', path: '/stripe/oauth/callback', query: callbackQuery });
  assert.equal(page.status, 200, page.body.toString());
  const connection = jsonBody(
    await call('stripe-connect', { method: 'GET', path: '/stripe/connection', headers: { Authorization: `Bearer ${environment.api_key}` } }),
  );
  assert.equal(connection.connected, true);
  const account = connection.account_id;

  // Link a customer: the organizations function reads its entitlements from Stripe at once.
  await emulatorControl(emulator.url, 'PUT', `/_emulator/accounts/${account}/customers/${CUSTOMER}/entitlements`, {
    lookup_keys: ['seats', 'pro'],
  });
  const organization = jsonBody(await call('organizations', jsonRequest('POST', '/organizations', { name: 'Flow' })));
  const linked = await call('organizations', jsonRequest('PUT', `/organizations/${organization.id}`, { stripe_customer_id: CUSTOMER }));
  assert.equal(linked.status, 200, linked.body.toString());

  // Sign in: the token carries the linked customer's entitlements.
  const email = `flow-${Date.now()}@example.com`;
  const user = jsonBody(await call('sessions', jsonRequest('POST', '/user_management/users', { email, password: PASSWORD })));
  const membership = await call(
    'sessions',
    jsonRequest('POST', '/user_management/organization_memberships', { user_id: user.id, organization_id: organization.id }),
  );
  assert.equal(membership.status, 201, membership.body.toString());
  const grant = (body) =>
    call('sessions', jsonRequest('POST', '/user_management/authenticate', {
      client_id: environment.client_id,
      client_secret: environment.api_key,
      organization_id: organization.id,
      ...body,
    }));
  const signedIn = jsonBody(await grant({ grant_type: 'password', email, password: PASSWORD }));
  assert.deepEqual(entitlementsClaim(signedIn.access_token), ['pro', 'seats']);

  // A webhook reports the changed entitlements, and the next refresh carries them.
  await emulatorControl(emulator.url, 'PUT', `/_emulator/accounts/${account}/customers/${CUSTOMER}/entitlements`, {
    lookup_keys: ['enterprise'],
  });
  const updated = await deliverEvent({
    type: 'entitlements.active_entitlement_summary.updated',
    account,
    customer: CUSTOMER,
  });
  assert.equal(updated.result, 'applied');
  const refreshed = jsonBody(await grant({ grant_type: 'refresh_token', refresh_token: signedIn.refresh_token }));
  assert.deepEqual(entitlementsClaim(refreshed.access_token), ['enterprise']);

  // Deauthorization ends the connection: the next token has no claim.
  await emulatorControl(emulator.url, 'POST', `/_emulator/accounts/${account}/disconnect`);
  const deauthorized = await deliverEvent({ type: 'account.application.deauthorized', account });
  assert.equal(deauthorized.result, 'applied');
  const afterDeauthorization = jsonBody(await grant({ grant_type: 'refresh_token', refresh_token: refreshed.refresh_token }));
  assert.equal(entitlementsClaim(afterDeauthorization.access_token), undefined);
});

for (const binary of BINARIES) {
  test(`${binary} calls only allowed DynamoDB actions`, (context) => {
    assertTableAccessAllowed(proxies[binary], binary, context);
  });

  test(`${binary} prints no secret`, () => {
    assertNoSecretInLogs(functions[binary]);
  });
}
