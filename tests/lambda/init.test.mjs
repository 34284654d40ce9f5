// Init of every function: the compiled binary starts, polls the Runtime API and serves a first
// invocation without any network call of its own. Each function starts three times:
//
// 1. with DynamoDB and Stripe endpoints on counting listeners: init opens no connection to them,
//    and neither does a first request that needs neither (an unknown path);
// 2. under strace (when installed): every connect() before the first poll goes to the Runtime API;
// 3. with DYNAMODB_ENDPOINT on a closed port: the first request still gets its response, and a
//    request that needs DynamoDB fails with a 5xx instead of hanging or crashing.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { CountingListener } from './lib/dynamodb-proxy.mjs';
import { jsonBody, request } from './lib/events.mjs';
import { TEST_SECRETS } from './lib/function-process.mjs';
import { stripeSignature } from './lib/stripe.mjs';
import { assertNoSecretInLogs, startLambda } from './lib/context.mjs';

const BINARIES = ['organizations', 'sessions', 'stripe-webhooks', 'stripe-connect'];

/** Time the tests wait after the first poll for a late connection attempt. */
const SETTLE_MS = 300;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function hasStrace() {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Returns a loopback port that nothing listens on (bound, then released). */
async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const scratch = mkdtempSync(join(tmpdir(), 'lambda-init-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

for (const binary of BINARIES) {
  describe(`${binary} init`, () => {
    test('opens no connection before or during a request that needs none', async () => {
      const dynamodb = await new CountingListener().start();
      const stripe = await new CountingListener().start();
      const fn = await startLambda(binary, {
        overrides: {
          DYNAMODB_ENDPOINT: dynamodb.url.replace(/\/$/, ''),
          STRIPE_API_BASE: stripe.url,
          STRIPE_CONNECT_BASE: stripe.url,
        },
      });
      try {
        await fn.initMs();
        await sleep(SETTLE_MS);
        assert.equal(dynamodb.connections, 0, 'init connected to DynamoDB');
        assert.equal(stripe.connections, 0, 'init connected to Stripe');

        const response = await request(fn, 'apigw-http-v2', { method: 'GET', path: '/no/such/route' });
        assert.equal(response.status, 404);
        assert.equal(typeof jsonBody(response).message, 'string');
        assert.equal(dynamodb.connections, 0, 'an unknown path connected to DynamoDB');
        assert.equal(stripe.connections, 0, 'an unknown path connected to Stripe');
        assertNoSecretInLogs(fn);
      } finally {
        await fn.stop();
        await dynamodb.close();
        await stripe.close();
      }
    });

    test('connects only to the Runtime API until the first request', { skip: !hasStrace() && 'strace is not installed' }, async () => {
      const dynamodb = await new CountingListener().start();
      const stripe = await new CountingListener().start();
      const trace = join(scratch, `${binary}.strace`);
      const fn = await startLambda(binary, {
        wrapper: ['strace', '-f', '-qq', '-e', 'trace=connect', '-o', trace],
        overrides: {
          DYNAMODB_ENDPOINT: dynamodb.url.replace(/\/$/, ''),
          STRIPE_API_BASE: stripe.url,
          STRIPE_CONNECT_BASE: stripe.url,
        },
      });
      try {
        await fn.initMs();
        await sleep(SETTLE_MS);
        const runtimePort = fn.runtime.address.split(':')[1];
        const connects = readFileSync(trace, 'utf8')
          .split('\n')
          .filter((line) => line.includes('connect('));
        assert.ok(connects.length > 0, 'strace recorded no connect(): the trace is not working');
        const elsewhere = connects.filter(
          (line) => !(line.includes('sin_port=htons(' + runtimePort + ')') && line.includes('127.0.0.1')),
        );
        assert.deepEqual(elsewhere, [], 'init connected somewhere other than the Runtime API');
      } finally {
        await fn.stop();
        await dynamodb.close();
        await stripe.close();
      }
    });

    test('serves its first request with DynamoDB unreachable', async () => {
      const port = await closedPort();
      const stripe = await new CountingListener().start();
      const fn = await startLambda(binary, {
        overrides: {
          DYNAMODB_ENDPOINT: `http://127.0.0.1:${port}`,
          STRIPE_API_BASE: stripe.url,
          STRIPE_CONNECT_BASE: stripe.url,
        },
      });
      try {
        const first = await request(fn, 'apigw-http-v2', { method: 'GET', path: '/no/such/route' });
        assert.equal(first.status, 404);

        // A request that reads the table must fail with a 5xx, not hang or crash the process.
        const needsTable = await request(fn, 'apigw-http-v2', requestNeedingTable(binary));
        assert.ok(needsTable.status >= 500, `expected a 5xx, got ${needsTable.status}: ${needsTable.body}`);
        const again = await request(fn, 'apigw-http-v2', { method: 'GET', path: '/no/such/route' });
        assert.equal(again.status, 404, 'the process stopped serving after the failure');
      } finally {
        await fn.stop();
        await stripe.close();
      }
    });
  });
}

/** Returns a request of `binary` that reads DynamoDB before the function can respond. */
function requestNeedingTable(binary) {
  const apiKey = { authorization: 'Bearer sk_test_unknownKeyForInitTest' };
  switch (binary) {
    case 'organizations':
      return { method: 'GET', path: '/organizations', headers: apiKey };
    case 'sessions':
      return { method: 'GET', path: '/user_management/users/user_01ARZ3NDEKTSV4RRFFQ69G5FAV', headers: apiKey };
    case 'stripe-connect':
      return { method: 'GET', path: '/stripe/connection', headers: apiKey };
    case 'stripe-webhooks': {
      // A verified event of a handled type makes the function look up the account's connection.
      const payload = JSON.stringify({
        id: 'evt_initTestClosedPort',
        object: 'event',
        type: 'entitlements.active_entitlement_summary.updated',
        account: 'acct_initTest',
        livemode: false,
        data: { object: { object: 'entitlements.active_entitlement_summary', customer: 'cus_initTest' } },
      });
      const secret = TEST_SECRETS.STRIPE_WEBHOOK_SECRETS.split(',').at(-1);
      return {
        method: 'POST',
        path: '/webhooks/stripe',
        headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(secret, payload) },
        body: payload,
      };
    }
    default:
      throw new Error(`no request needing the table for ${binary}`);
  }
}
