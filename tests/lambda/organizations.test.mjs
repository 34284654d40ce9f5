// The organizations function's compiled binary, driven through a local Lambda Runtime API with
// the events of API Gateway REST (v1), HTTP API (v2), function URLs and ALB.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { CountingListener } from './lib/dynamodb-proxy.mjs';
import { SHAPES, jsonBody, request } from './lib/events.mjs';
import {
  assertNoSecretInLogs,
  assertTableAccessAllowed,
  createEnvironment,
  startDynamoDbProxy,
  startLambda,
} from './lib/context.mjs';

const BINARY = 'organizations';

let proxy;
let stripe;
let fn;
let apiKey;

before(async () => {
  proxy = await startDynamoDbProxy();
  // No test here links a Stripe customer, so any call to Stripe would be a fault.
  stripe = await new CountingListener().start();
  ({ api_key: apiKey } = await createEnvironment('lambda-organizations'));
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

function authorized(extra = {}) {
  return { Authorization: `Bearer ${apiKey}`, ...extra };
}

function assertCommonHeaders(response) {
  assert.match(response.headers['x-request-id']?.[0] ?? '', /^req_/, 'X-Request-ID is missing');
}

describe('organizations through each event shape', () => {
  for (const shape of SHAPES) {
    test(`${shape}: base64 JSON body creates, then get and list`, async () => {
      const name = `Acme ${shape} ü`;
      const created = await request(fn, shape, {
        method: 'POST',
        path: '/organizations',
        headers: authorized({ 'Content-Type': 'application/json' }),
        body: JSON.stringify({ name, external_id: `ext-${shape}-${Date.now()}` }),
        base64: true,
      });
      assert.equal(created.status, 201, created.body.toString());
      assert.match(created.headers['content-type']?.[0] ?? '', /^application\/json/);
      assertCommonHeaders(created);
      const organization = jsonBody(created);
      assert.equal(organization.name, name);
      assert.match(organization.id, /^org_/);

      const fetched = await request(fn, shape, {
        method: 'GET',
        path: `/organizations/${organization.id}`,
        headers: authorized(),
      });
      assert.equal(fetched.status, 200, fetched.body.toString());
      assert.equal(jsonBody(fetched).id, organization.id);

      const byExternalId = await request(fn, shape, {
        method: 'GET',
        path: `/organizations/external_id/${organization.external_id}`,
        headers: authorized(),
      });
      assert.equal(byExternalId.status, 200, byExternalId.body.toString());
      assert.equal(jsonBody(byExternalId).id, organization.id);

      const listed = await request(fn, shape, {
        method: 'GET',
        path: '/organizations',
        query: 'limit=100&order=desc',
        headers: authorized(),
      });
      assert.equal(listed.status, 200, listed.body.toString());
      const page = jsonBody(listed);
      assert.equal(page.object, 'list');
      assert.ok(page.data.some((item) => item.id === organization.id), 'the new organization is not listed');
    });

    test(`${shape}: plain JSON body updates and delete removes`, async () => {
      const created = jsonBody(
        await request(fn, shape, {
          method: 'POST',
          path: '/organizations',
          headers: authorized({ 'Content-Type': 'application/json' }),
          body: JSON.stringify({ name: 'Before' }),
        }),
      );
      const updated = await request(fn, shape, {
        method: 'PUT',
        path: `/organizations/${created.id}`,
        headers: authorized({ 'Content-Type': 'application/json' }),
        body: JSON.stringify({ name: 'After' }),
      });
      assert.equal(updated.status, 200, updated.body.toString());
      assert.equal(jsonBody(updated).name, 'After');

      const deleted = await request(fn, shape, {
        method: 'DELETE',
        path: `/organizations/${created.id}`,
        headers: authorized(),
      });
      assert.ok([200, 202, 204].includes(deleted.status), `delete returned ${deleted.status}`);
      const afterDelete = await request(fn, shape, {
        method: 'GET',
        path: `/organizations/${created.id}`,
        headers: authorized(),
      });
      assert.equal(afterDelete.status, 404);
    });

    test(`${shape}: a query value is decoded exactly once`, async () => {
      // `l%69mit=%31` decodes to `limit=1`, a valid page size.
      const once = await request(fn, shape, {
        method: 'GET',
        path: '/organizations',
        query: 'l%69mit=%31',
        headers: authorized(),
      });
      assert.equal(once.status, 200, once.body.toString());
      assert.equal(jsonBody(once).data.length, 1);

      // `%2531` decodes once to `%31`, which is no number: only a second decoding would turn it
      // into `1`.
      const twice = await request(fn, shape, {
        method: 'GET',
        path: '/organizations',
        query: 'limit=%2531',
        headers: authorized(),
      });
      assert.equal(twice.status, 422, twice.body.toString());
    });

    test(`${shape}: unknown path and missing key answer JSON errors`, async () => {
      const unknown = await request(fn, shape, { method: 'GET', path: '/no/such/route' });
      assert.equal(unknown.status, 404);
      assert.equal(typeof jsonBody(unknown).message, 'string');
      assertCommonHeaders(unknown);

      const unauthorized = await request(fn, shape, { method: 'GET', path: '/organizations' });
      assert.equal(unauthorized.status, 401);
      assert.equal(typeof jsonBody(unauthorized).message, 'string');
    });
  }
});

describe('organizations behind a REST API stage', () => {
  test('a named stage does not prefix the route', async () => {
    // REST API events carry the stage in requestContext.stage; template.yaml sets
    // AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH so that lambda_http does not add it to the path.
    const listed = await request(fn, 'apigw-rest-v1', {
      method: 'GET',
      path: '/organizations',
      stage: 'live',
      headers: authorized(),
    });
    assert.equal(listed.status, 200, listed.body.toString());
  });
});

describe('organizations bad input', () => {
  test('invalid JSON in a base64 body is a 400', async () => {
    const response = await request(fn, 'apigw-http-v2', {
      method: 'POST',
      path: '/organizations',
      headers: authorized({ 'content-type': 'application/json' }),
      body: '{"name": ',
      base64: true,
    });
    assert.equal(response.status, 400);
    assert.equal(typeof jsonBody(response).message, 'string');
  });
});

describe('organizations deployment rules', () => {
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
