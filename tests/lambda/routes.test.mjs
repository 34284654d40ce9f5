// The HTTP API routes of template.yaml: exactly the service's public routes, each on the function
// that serves it, and each one matched by that function's compiled router (never its fallback).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { CountingListener } from './lib/dynamodb-proxy.mjs';
import { jsonBody, request } from './lib/events.mjs';
import { settings, startDynamoDbProxy, startLambda, templateFunction } from './lib/context.mjs';

/** The public routes, by the binary that serves them. */
const EXPECTED_ROUTES = {
  organizations: [
    ['POST', '/organizations'],
    ['GET', '/organizations'],
    ['GET', '/organizations/{id}'],
    ['PUT', '/organizations/{id}'],
    ['DELETE', '/organizations/{id}'],
    ['GET', '/organizations/external_id/{external_id}'],
  ],
  sessions: [
    ['POST', '/user_management/users'],
    ['GET', '/user_management/users/{id}'],
    ['POST', '/user_management/organization_memberships'],
    ['DELETE', '/user_management/organization_memberships/{id}'],
    ['POST', '/user_management/authenticate'],
    ['POST', '/user_management/sessions/revoke'],
    ['GET', '/sso/jwks/{client_id}'],
    ['GET', '/api/entitlements'],
  ],
  'stripe-webhooks': [['POST', '/webhooks/stripe']],
  'stripe-connect': [
    ['POST', '/stripe/connect'],
    ['GET', '/stripe/oauth/callback'],
    ['GET', '/stripe/connection'],
    ['PUT', '/stripe/connection'],
    ['DELETE', '/stripe/connection'],
  ],
};

/** The message of the routers' fallback for an unknown path (shared::http). */
const FALLBACK_MESSAGE = 'The requested path could not be found.';

const sorted = (routes) => [...routes].map((route) => route.join(' ')).sort();

test('template.yaml routes are exactly the public routes', () => {
  const functions = Object.values(settings.templateSummary.functions);
  assert.deepEqual(
    functions.map((fn) => fn.binary).sort(),
    Object.keys(EXPECTED_ROUTES).sort(),
    'template.yaml does not define one function per binary',
  );
  for (const [binary, routes] of Object.entries(EXPECTED_ROUTES)) {
    assert.deepEqual(sorted(templateFunction(binary).routes), sorted(routes), `routes of ${binary}`);
  }
});

test('every function is built with cargo-lambda from its own binary', () => {
  for (const binary of Object.keys(EXPECTED_ROUTES)) {
    assert.equal(templateFunction(binary).build_method, 'rust-cargolambda');
  }
});

describe('compiled routers match every template route', () => {
  let proxy;
  let stripe;

  before(async () => {
    proxy = await startDynamoDbProxy();
    stripe = await new CountingListener().start();
  });

  after(async () => {
    await proxy?.close();
    await stripe?.close();
  });

  for (const binary of Object.keys(EXPECTED_ROUTES)) {
    test(`${binary} serves each of its template routes`, async () => {
      const fn = await startLambda(binary, {
        overrides: { DYNAMODB_ENDPOINT: proxy.endpoint, STRIPE_API_BASE: stripe.url, STRIPE_CONNECT_BASE: stripe.url },
      });
      try {
        for (const [method, template] of templateFunction(binary).routes) {
          // Path parameters get IDs of the right shape that exist nowhere.
          const path = template
            .replace('{id}', 'org_01ARZ3NDEKTSV4RRFFQ69G5FAV')
            .replace('{external_id}', 'ext-unknown')
            .replace('{client_id}', 'client_01ARZ3NDEKTSV4RRFFQ69G5FAV');
          const response = await request(fn, 'apigw-http-v2', { method, path });
          assert.notEqual(response.status, 405, `${method} ${path}: the method is not routed`);
          if (response.status === 404 && response.headers['content-type']?.[0]?.startsWith('application/json')) {
            assert.notEqual(jsonBody(response).message, FALLBACK_MESSAGE, `${method} ${path}: the path is not routed`);
          }
        }
      } finally {
        await fn.stop();
      }
    });
  }
});
