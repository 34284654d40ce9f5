// The sessions function's compiled binary, driven through a local Lambda Runtime API with each
// integration's events: users, memberships, the password and refresh grants, revocation and the
// JWKS. The cookie refresh route gets its cookie the way each integration sends cookies, and its
// new cookie must come back where that integration reads `Set-Cookie`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { CountingListener } from './lib/dynamodb-proxy.mjs';
import { SHAPES, jsonBody, request } from './lib/events.mjs';
import { TEST_PARAMETERS, TEST_SECRETS } from './lib/function-process.mjs';
import { seal, unseal } from './lib/iron.mjs';
import {
  assertNoSecretInLogs,
  assertTableAccessAllowed,
  createEnvironment,
  startDynamoDbProxy,
  startLambda,
} from './lib/context.mjs';

const BINARY = 'sessions';
const PASSWORD = 'correct horse battery staple 42';

let proxy;
let stripe;
let fn;
let organizations;
let environment;

before(async () => {
  proxy = await startDynamoDbProxy();
  stripe = await new CountingListener().start();
  environment = await createEnvironment('lambda-sessions');
  const overrides = {
    DYNAMODB_ENDPOINT: proxy.endpoint,
    STRIPE_API_BASE: stripe.url,
    STRIPE_CONNECT_BASE: stripe.url,
  };
  fn = await startLambda(BINARY, { overrides });
  // The organizations binary creates the organization the memberships point at; its requests go
  // to DynamoDB directly, so the proxy records only the sessions function.
  organizations = await startLambda('organizations', {
    overrides: { ...overrides, DYNAMODB_ENDPOINT: process.env.DYNAMODB_ENDPOINT },
  });
});

after(async () => {
  await fn?.stop();
  await organizations?.stop();
  await proxy?.close();
  await stripe?.close();
});

function authorized(extra = {}) {
  return { Authorization: `Bearer ${environment.api_key}`, ...extra };
}

function jsonPost(path, body, extra = {}) {
  return {
    method: 'POST',
    path,
    headers: authorized({ 'Content-Type': 'application/json', ...extra }),
    body: JSON.stringify(body),
    base64: true,
  };
}

/** Decodes the payload of a JWT without verifying it. */
function jwtClaims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

function camelCase(value) {
  if (Array.isArray(value)) return value.map(camelCase);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key.replace(/_([a-z])/g, (_, letter) => letter.toUpperCase()), camelCase(item)]),
  );
}

/** Creates a user who is a member of a new organization, through the shape's events. */
async function memberOfOrganization(shape) {
  const organization = await request(organizations, shape, jsonPost('/organizations', { name: `Sessions ${shape}` }));
  assert.equal(organization.status, 201, organization.body.toString());
  const organizationId = jsonBody(organization).id;

  const email = `lambda-${shape}-${Date.now()}@example.com`;
  const created = await request(fn, shape, jsonPost('/user_management/users', { email, password: PASSWORD, first_name: 'Zoë' }));
  assert.equal(created.status, 201, created.body.toString());
  const user = jsonBody(created);
  assert.equal(user.email, email);

  const fetched = await request(fn, shape, { method: 'GET', path: `/user_management/users/${user.id}`, headers: authorized() });
  assert.equal(fetched.status, 200, fetched.body.toString());
  assert.equal(jsonBody(fetched).first_name, 'Zoë');

  const membership = await request(
    fn,
    shape,
    jsonPost('/user_management/organization_memberships', { user_id: user.id, organization_id: organizationId, role_slug: 'member' }),
  );
  assert.equal(membership.status, 201, membership.body.toString());
  return { user, email, organizationId, membershipId: jsonBody(membership).id };
}

async function passwordGrant(shape, email, organizationId) {
  const response = await request(
    fn,
    shape,
    jsonPost('/user_management/authenticate', {
      client_id: environment.client_id,
      client_secret: environment.api_key,
      grant_type: 'password',
      email,
      password: PASSWORD,
      organization_id: organizationId,
    }),
  );
  assert.equal(response.status, 200, response.body.toString());
  return jsonBody(response);
}

describe('sessions through each event shape', () => {
  for (const shape of SHAPES) {
    test(`${shape}: users, memberships, grants, JWKS and revocation`, async () => {
      const { email, organizationId, membershipId } = await memberOfOrganization(shape);

      const signedIn = await passwordGrant(shape, email, organizationId);
      const claims = jwtClaims(signedIn.access_token);
      assert.equal(claims.org_id, organizationId);
      assert.equal(claims.iss, TEST_PARAMETERS.TOKEN_ISSUER);
      assert.equal(claims.exp - claims.iat, Number(TEST_PARAMETERS.ACCESS_TOKEN_TTL_SECONDS));

      const refreshed = await request(
        fn,
        shape,
        jsonPost('/user_management/authenticate', {
          client_id: environment.client_id,
          client_secret: environment.api_key,
          grant_type: 'refresh_token',
          refresh_token: signedIn.refresh_token,
          organization_id: organizationId,
        }),
      );
      assert.equal(refreshed.status, 200, refreshed.body.toString());
      assert.notEqual(jsonBody(refreshed).refresh_token, signedIn.refresh_token);

      const jwks = await request(fn, shape, { method: 'GET', path: `/sso/jwks/${environment.client_id}` });
      assert.equal(jwks.status, 200, jwks.body.toString());
      const { kid } = JSON.parse(Buffer.from(signedIn.access_token.split('.')[0], 'base64url').toString('utf8'));
      assert.ok(jsonBody(jwks).keys.some((key) => key.kid === kid), 'the JWKS lacks the signing key');

      const revoked = await request(fn, shape, jsonPost('/user_management/sessions/revoke', { session_id: claims.sid }));
      assert.equal(revoked.status, 204, revoked.body.toString());

      const removed = await request(fn, shape, {
        method: 'DELETE',
        path: `/user_management/organization_memberships/${membershipId}`,
        headers: authorized(),
      });
      assert.equal(removed.status, 204, removed.body.toString());
    });

    test(`${shape}: cookie refresh reads the cookie and returns the new one`, async () => {
      const { user, email, organizationId } = await memberOfOrganization(shape);
      const signedIn = await passwordGrant(shape, email, organizationId);
      const cookie = seal(TEST_SECRETS.COOKIE_PASSWORD, {
        organizationId,
        user: camelCase(user),
        accessToken: signedIn.access_token,
        refreshToken: signedIn.refresh_token,
        authenticationMethod: 'Password',
      });

      const response = await request(fn, shape, {
        method: 'GET',
        path: TEST_PARAMETERS.ENTITLEMENTS_PATH,
        headers: { Accept: 'application/json' },
        // Another cookie first: the route must pick `wos-session` out of the list.
        cookies: ['theme=dark', `wos-session=${cookie}`],
      });
      assert.equal(response.status, 200, response.body.toString());
      // Stripe is not connected, so the token carries no claim.
      assert.deepEqual(jsonBody(response), { entitlements: null });
      assert.equal(response.headers['cache-control']?.[0], 'no-store');

      assert.equal(response.cookies.length, 1, `expected one Set-Cookie, got ${JSON.stringify(response.cookies)}`);
      const [setCookie] = response.cookies;
      assert.match(setCookie, /^wos-session=/);
      assert.match(setCookie, /HttpOnly/);
      assert.match(setCookie, /Secure/);
      if (shape === 'apigw-http-v2' || shape === 'function-url') {
        // Payload format 2.0 carries cookies in `cookies`, never in `headers`.
        assert.equal(response.payload.headers['set-cookie'], undefined);
        assert.deepEqual(response.payload.cookies, [setCookie]);
      } else {
        assert.equal(response.payload.cookies, undefined);
      }

      const renewed = unseal(TEST_SECRETS.COOKIE_PASSWORD, setCookie.slice('wos-session='.length).split(';')[0]);
      assert.notEqual(renewed.refreshToken, signedIn.refresh_token);
      assert.equal(jwtClaims(renewed.accessToken).org_id, organizationId);
    });

    test(`${shape}: cookie refresh without the cookie is a 401`, async () => {
      const response = await request(fn, shape, { method: 'GET', path: TEST_PARAMETERS.ENTITLEMENTS_PATH, cookies: ['theme=dark'] });
      assert.equal(response.status, 401, response.body.toString());
      assert.equal(jsonBody(response).code, 'no_session_cookie_provided');
    });
  }
});

describe('sessions deployment rules', () => {
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
