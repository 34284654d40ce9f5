// Measures each function binary as Lambda runs it. The init duration runs from process start to
// the first poll of the Runtime API. The first response is the time to the first served
// invocation. The peak RSS (VmHWM) is read after a bounded sequential load of real requests on
// DynamoDB Local.
//
// Usage (the variables of lib/context.mjs must be set; scripts/deploy-checks.sh shows how):
//
//   node tests/lambda/measure.mjs [--invocations 500] [--seconds 10] [--starts 5] [--json FILE]
//                                 [--only sessions,organizations] [--set NAME=VALUE ...]
//
// LAMBDA_BIN_DIR selects the build: target/release for numbers worth recording, target/debug
// only to check that the script works.

import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { CountingListener } from './lib/dynamodb-proxy.mjs';
import { buildEvent, readResponse } from './lib/events.mjs';
import { TEST_PARAMETERS, TEST_SECRETS } from './lib/function-process.mjs';
import { seal, unseal } from './lib/iron.mjs';
import { stripeSignature } from './lib/stripe.mjs';
import { createEnvironment, settings, startLambda } from './lib/context.mjs';

const { values: options } = parseArgs({
  options: {
    invocations: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
    starts: { type: 'string', default: '5' },
    json: { type: 'string' },
    // Extra environment variables for every function, such as glibc malloc tunables.
    set: { type: 'string', multiple: true, default: [] },
    only: { type: 'string' },
  },
});
const INVOCATIONS = Number(options.invocations);
const TIME_LIMIT_MS = Number(options.seconds) * 1000;
const STARTS = Number(options.starts);

const BINARIES = ['organizations', 'sessions', 'stripe-webhooks', 'stripe-connect'].filter(
  (binary) => !options.only || options.only.split(',').includes(binary),
);
const EXTRA_ENVIRONMENT = Object.fromEntries(
  options.set.map((assignment) => {
    const equals = assignment.indexOf('=');
    if (equals <= 0) throw new Error(`--set expects NAME=VALUE, got ${assignment}`);
    return [assignment.slice(0, equals), assignment.slice(equals + 1)];
  }),
);

async function call(fn, spec, expected) {
  const result = await fn.invoke(buildEvent('apigw-http-v2', spec));
  if (result.kind !== 'response') throw new Error(`${fn.name}: invocation error ${result.body}`);
  const response = readResponse('apigw-http-v2', result.json());
  if (expected !== undefined && response.status !== expected) {
    throw new Error(`${fn.name} ${spec.method} ${spec.path}: status ${response.status}: ${response.body}`);
  }
  return response;
}

function json(body, extra = {}) {
  return { 'content-type': 'application/json', ...extra, body: JSON.stringify(body) };
}

function post(path, apiKey, body) {
  const { body: text, ...headers } = json(body, apiKey ? { authorization: `Bearer ${apiKey}` } : {});
  return { method: 'POST', path, headers, body: text, base64: true };
}

/**
 * Builds, per function, a setup step (run once, after init) and the request of invocation `i`,
 * a mix of the function's common requests.
 */
async function workload(binary, organizationsFn) {
  const environment = await createEnvironment(`measure-${binary}`);
  const auth = { authorization: `Bearer ${environment.api_key}` };
  switch (binary) {
    case 'organizations': {
      const ids = [];
      return {
        setup: async () => {},
        next: async (fn, i) => {
          if (i % 4 === 0 || ids.length === 0) {
            const created = await call(fn, post('/organizations', environment.api_key, { name: `Measure ${i}` }), 201);
            ids.push(JSON.parse(created.body).id);
          } else if (i % 4 === 1) {
            await call(fn, { method: 'GET', path: `/organizations/${ids.at(-1)}`, headers: auth }, 200);
          } else if (i % 4 === 2) {
            await call(fn, { method: 'GET', path: '/organizations', query: 'limit=10', headers: auth }, 200);
          } else {
            const { body, ...headers } = json({ name: `Renamed ${i}` }, auth);
            await call(fn, { method: 'PUT', path: `/organizations/${ids.at(-1)}`, headers, body }, 200);
          }
        },
      };
    }
    case 'sessions': {
      const password = 'measure password 0123456789';
      let session;
      return {
        setup: async (fn) => {
          const org = await call(organizationsFn, post('/organizations', environment.api_key, { name: 'Measure' }), 201);
          const organizationId = JSON.parse(org.body).id;
          const email = `measure-${Date.now()}@example.com`;
          const user = JSON.parse((await call(fn, post('/user_management/users', environment.api_key, { email, password }), 201)).body);
          await call(
            fn,
            post('/user_management/organization_memberships', environment.api_key, { user_id: user.id, organization_id: organizationId }),
            201,
          );
          session = { email, organizationId, user };
        },
        next: async (fn, i) => {
          if (i % 50 === 0 || !session.refreshToken) {
            // The password grant: an Argon2 verification, the most memory any request takes.
            const grant = JSON.parse(
              (
                await call(
                  fn,
                  post('/user_management/authenticate', null, {
                    client_id: environment.client_id,
                    client_secret: environment.api_key,
                    grant_type: 'password',
                    email: session.email,
                    password,
                    organization_id: session.organizationId,
                  }),
                  200,
                )
              ).body,
            );
            session.refreshToken = grant.refresh_token;
            session.accessToken = grant.access_token;
          } else if (i % 2 === 0) {
            const grant = JSON.parse(
              (
                await call(
                  fn,
                  post('/user_management/authenticate', null, {
                    client_id: environment.client_id,
                    client_secret: environment.api_key,
                    grant_type: 'refresh_token',
                    refresh_token: session.refreshToken,
                    organization_id: session.organizationId,
                  }),
                  200,
                )
              ).body,
            );
            session.refreshToken = grant.refresh_token;
            session.accessToken = grant.access_token;
          } else {
            const cookie = seal(TEST_SECRETS.COOKIE_PASSWORD, {
              organizationId: session.organizationId,
              user: { object: 'user', id: session.user.id, email: session.email },
              accessToken: session.accessToken,
              refreshToken: session.refreshToken,
            });
            const response = await call(
              fn,
              { method: 'GET', path: TEST_PARAMETERS.ENTITLEMENTS_PATH, cookies: [`wos-session=${cookie}`] },
              200,
            );
            const setCookie = response.cookies[0];
            const renewed = unseal(TEST_SECRETS.COOKIE_PASSWORD, setCookie.slice('wos-session='.length).split(';')[0]);
            session.refreshToken = renewed.refreshToken;
            session.accessToken = renewed.accessToken;
          }
        },
      };
    }
    case 'stripe-webhooks': {
      const secret = TEST_SECRETS.STRIPE_WEBHOOK_SECRETS.split(',').at(-1);
      return {
        setup: async () => {},
        next: async (fn, i) => {
          const payload = Buffer.from(
            JSON.stringify({
              id: `evt_measure${Date.now()}${i}`,
              object: 'event',
              type: i % 2 === 0 ? 'customer.created' : 'entitlements.active_entitlement_summary.updated',
              account: 'acct_measureNotConnected',
              livemode: false,
              created: Math.floor(Date.now() / 1000),
              data: { object: { object: 'entitlements.active_entitlement_summary', customer: 'cus_measure', livemode: false } },
            }),
          );
          await call(
            fn,
            {
              method: 'POST',
              path: '/webhooks/stripe',
              headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(secret, payload) },
              body: payload,
              base64: true,
            },
            200,
          );
        },
      };
    }
    case 'stripe-connect':
      return {
        setup: async () => {},
        next: async (fn, i) => {
          if (i % 2 === 0) {
            await call(fn, { method: 'POST', path: '/stripe/connect', headers: auth }, 201);
          } else {
            await call(fn, { method: 'GET', path: '/stripe/connection', headers: auth }, 200);
          }
        },
      };
    default:
      throw new Error(`no workload for ${binary}`);
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const stripe = await new CountingListener().start();
const overrides = {
  DYNAMODB_ENDPOINT: settings.dynamodbEndpoint,
  STRIPE_API_BASE: stripe.url,
  STRIPE_CONNECT_BASE: stripe.url,
  ...EXTRA_ENVIRONMENT,
};
const organizationsFn = await startLambda('organizations', { overrides });
const results = [];

try {
  for (const binary of BINARIES) {
    const initMs = [];
    const firstServedMs = [];
    for (let start = 0; start < STARTS; start += 1) {
      const fn = await startLambda(binary, { overrides });
      try {
        initMs.push(await fn.initMs());
        await call(fn, { method: 'GET', path: '/no/such/route' }, 404);
        firstServedMs.push(performance.now() - fn.spawnedAt);
      } finally {
        await fn.stop();
      }
    }

    const load = await workload(binary, organizationsFn);
    const fn = await startLambda(binary, { overrides });
    let completed = 0;
    let loadMs;
    try {
      await fn.initMs();
      await load.setup(fn);
      const rssAfterSetup = fn.peakRssKib();
      const started = performance.now();
      while (completed < INVOCATIONS && performance.now() - started < TIME_LIMIT_MS) {
        await load.next(fn, completed);
        completed += 1;
      }
      loadMs = performance.now() - started;
      results.push({
        binary,
        sizeBytes: statSync(join(settings.binDir, binary)).size,
        initMsMedian: median(initMs),
        initMsMax: Math.max(...initMs),
        firstServedMsMedian: median(firstServedMs),
        peakRssMib: fn.peakRssKib() / 1024,
        peakRssAfterSetupMib: rssAfterSetup / 1024,
        invocations: completed,
        loadMs,
      });
    } finally {
      await fn.stop();
    }
  }
} finally {
  await organizationsFn.stop();
  await stripe.close();
}

console.log(`binaries: ${settings.binDir}; ${STARTS} starts each; load: up to ${INVOCATIONS} sequential invocations or ${options.seconds} s`);
if (options.set.length > 0) console.log(`extra environment: ${options.set.join(' ')}`);
console.log('| function | binary | init (median / max) | first response | peak RSS after setup | peak RSS after load | invocations in |');
console.log('|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.binary} | ${(r.sizeBytes / 1048576).toFixed(1)} MiB | ${r.initMsMedian.toFixed(1)} / ${r.initMsMax.toFixed(1)} ms | ` +
      `${r.firstServedMsMedian.toFixed(1)} ms | ${r.peakRssAfterSetupMib.toFixed(1)} MiB | ${r.peakRssMib.toFixed(1)} MiB | ` +
      `${r.invocations} in ${(r.loadMs / 1000).toFixed(1)} s |`,
  );
}
if (options.json) writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
