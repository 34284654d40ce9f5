// The stripe-webhooks function's compiled binary, driven through a local Lambda Runtime API. A
// signed body must still verify after each integration's event round trip, base64-encoded or not.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { CountingListener } from './lib/dynamodb-proxy.mjs';
import { SHAPES, jsonBody, request } from './lib/events.mjs';
import { TEST_SECRETS } from './lib/function-process.mjs';
import { stripeSignature } from './lib/stripe.mjs';
import { assertNoSecretInLogs, assertTableAccessAllowed, startDynamoDbProxy, startLambda } from './lib/context.mjs';

const BINARY = 'stripe-webhooks';
const [OLD_SECRET, CURRENT_SECRET] = TEST_SECRETS.STRIPE_WEBHOOK_SECRETS.split(',');

let proxy;
let stripe;
let fn;

before(async () => {
  proxy = await startDynamoDbProxy();
  // No event here reaches a connected account, so any call to Stripe would be a fault.
  stripe = await new CountingListener().start();
  fn = await startLambda(BINARY, {
    overrides: {
      DYNAMODB_ENDPOINT: proxy.endpoint,
      STRIPE_API_BASE: stripe.url,
      STRIPE_CONNECT_BASE: stripe.url,
    },
  });
});

after(async () => {
  await fn?.stop();
  await proxy?.close();
  await stripe?.close();
});

let sequence = 0;

/**
 * Builds an event body whose bytes a re-serialisation would change. It has non-ASCII text,
 * escaped and raw Unicode, unusual spacing, Stripe's key order and a trailing newline.
 */
function awkwardPayload(type, extra = {}) {
  sequence += 1;
  const id = `evt_lambda${Date.now()}${sequence}`;
  const object = { object: 'customer', id: 'cus_Lambda', name: 'Zoë “Ωmega” 🚀', note: 'tab\there \u2028 line' };
  return Buffer.from(
    `{\n  "id": "${id}",\n  "object":"event",  "type" : "${type}",\n` +
      `  "api_version": "2026-09-30.endive", "created": ${Math.floor(Date.now() / 1000)},\n` +
      `  "livemode": false, "pending_webhooks": 1,\n` +
      `  "data": {"object": ${JSON.stringify(object, null, 3)}},\n` +
      Object.entries(extra)
        .map(([key, value]) => `  "${key}": ${JSON.stringify(value)},\n`)
        .join('') +
      `  "request": {"id": null, "idempotency_key": null}\n}\n`,
    'utf8',
  );
}

function delivery(payload, signature, base64) {
  return {
    method: 'POST',
    path: '/webhooks/stripe',
    headers: {
      'Content-Type': 'application/json; charset=utf-8',
      'Stripe-Signature': signature,
      'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
    },
    body: payload,
    base64,
  };
}

describe('webhook signatures through each event shape', () => {
  for (const shape of SHAPES) {
    for (const base64 of [true, false]) {
      const encoding = base64 ? 'base64' : 'plain';

      test(`${shape}, ${encoding} body: a signed event verifies`, async () => {
        const payload = awkwardPayload('customer.created');
        const response = await request(fn, shape, delivery(payload, stripeSignature(CURRENT_SECRET, payload), base64));
        assert.equal(response.status, 200, response.body.toString());
        assert.match(response.headers['content-type']?.[0] ?? '', /^application\/json/);
        assert.deepEqual(jsonBody(response), { received: true, result: 'ignored', reason: 'unhandled_event_type' });
      });

      test(`${shape}, ${encoding} body: one changed byte fails verification`, async () => {
        const payload = awkwardPayload('customer.created');
        const signature = stripeSignature(CURRENT_SECRET, payload);
        const tampered = Buffer.from(payload);
        const index = tampered.indexOf('cus_Lambda') + 'cus_'.length;
        tampered[index] = 'l'.charCodeAt(0);
        const response = await request(fn, shape, delivery(tampered, signature, base64));
        assert.equal(response.status, 400, response.body.toString());
        assert.equal(typeof jsonBody(response).message, 'string');
      });
    }
  }

  test('an older configured secret still verifies', async () => {
    const payload = awkwardPayload('customer.created');
    const response = await request(fn, 'apigw-http-v2', delivery(payload, stripeSignature(OLD_SECRET, payload), true));
    assert.equal(response.status, 200, response.body.toString());
  });

  test('a signature from an unknown secret is rejected', async () => {
    const payload = awkwardPayload('customer.created');
    const response = await request(
      fn,
      'apigw-http-v2',
      delivery(payload, stripeSignature('whsec_notConfigured', payload), true),
    );
    assert.equal(response.status, 400, response.body.toString());
  });

  test('a missing Stripe-Signature is rejected', async () => {
    const payload = awkwardPayload('customer.created');
    const spec = delivery(payload, '', true);
    delete spec.headers['Stripe-Signature'];
    const response = await request(fn, 'apigw-rest-v1', spec);
    assert.equal(response.status, 400, response.body.toString());
  });
});

describe('webhook events that read the table', () => {
  for (const shape of SHAPES) {
    test(`${shape}: an event of an unconnected account is acknowledged`, async () => {
      const payload = Buffer.from(
        JSON.stringify({
          id: `evt_lambdaUnconnected${Date.now()}${shape.length}`,
          object: 'event',
          type: 'entitlements.active_entitlement_summary.updated',
          account: 'acct_lambdaNotConnected',
          livemode: false,
          created: Math.floor(Date.now() / 1000),
          data: {
            object: {
              object: 'entitlements.active_entitlement_summary',
              customer: 'cus_lambdaUnknown',
              entitlements: { object: 'list', data: [], has_more: false, url: '/v1/customer/cus_lambdaUnknown/entitlements' },
              livemode: false,
            },
          },
        }),
      );
      const response = await request(fn, shape, delivery(payload, stripeSignature(CURRENT_SECRET, payload), true));
      assert.equal(response.status, 200, response.body.toString());
      assert.deepEqual(jsonBody(response), { received: true, result: 'ignored', reason: 'account_not_connected' });
    });
  }
});

describe('stripe-webhooks deployment rules', () => {
  test('calls only allowed DynamoDB actions', (context) => {
    assert.ok(proxy.requests.length > 0, 'the function made no DynamoDB request');
    assertTableAccessAllowed(proxy, BINARY, context);
  });

  test('reaches no Stripe endpoint', () => {
    assert.equal(stripe.connections, 0);
  });

  test('prints no secret', () => {
    assertNoSecretInLogs(fn);
  });
});
