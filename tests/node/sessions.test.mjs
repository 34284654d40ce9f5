// Black-box tests of users, memberships, sign-in, sessions, the JWKS and the cookie route. They
// drive a running local stack with the official WorkOS Node SDK, with jose for JWKS checks, and
// with plain fetch for requests the SDK cannot send. Environment variables:
//   BASE_URL               the stack's base URL, such as http://127.0.0.1:8080
//   API_KEY, CLIENT_ID     an API key of one environment and that environment's client ID
//   CLIENT_ID_2            optional: the client ID of a second environment of the same stack
//   COOKIE_PASSWORD        optional: the stack's COOKIE_PASSWORD, for the cookie route tests
//   REFRESH_GRACE_SECONDS  optional: the stack's grace window, when set to 5 seconds or less the
//                          reuse-after-the-window test runs here (the Rust tests always cover it)
//   STRIPE_EMULATOR_URL    optional: the Stripe emulator the stack uses, for the entitlements test
//                          (functions/sessions/tests/sdk_entitlements.rs covers the claim without it)
// Tests that need an optional variable are skipped, with the reason, when it is not set.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthenticationException, BadRequestException, OauthException, WorkOS } from '@workos-inc/node';
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify } from 'jose';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set; run these tests through scripts/test.sh`);
  }
  return value;
}

const BASE_URL = requiredEnv('BASE_URL');
const API_KEY = requiredEnv('API_KEY');
const CLIENT_ID = requiredEnv('CLIENT_ID');
const CLIENT_ID_2 = process.env.CLIENT_ID_2;
const SERVER_COOKIE_PASSWORD = process.env.COOKIE_PASSWORD;
const GRACE_SECONDS = Number(process.env.REFRESH_GRACE_SECONDS ?? '30');
const STRIPE_EMULATOR_URL = process.env.STRIPE_EMULATOR_URL;

// The password the SDK seals its own cookies with. The service never receives it.
const SDK_COOKIE_PASSWORD = `sdk-side-password-${randomUUID()}`;
const PASSWORD = 'correct horse battery staple';
const RUN = randomUUID().replaceAll('-', '').slice(0, 10);
let counter = 0;

function uniqueEmail(prefix) {
  counter += 1;
  return `${prefix}-${RUN}-${counter}@example.com`;
}

function workosClient() {
  const url = new URL(BASE_URL);
  return new WorkOS(API_KEY, {
    apiHostname: url.hostname,
    port: Number(url.port),
    https: false,
    clientId: CLIENT_ID,
    // A retried 5xx would hide the first response, which is the one under test.
    maxRetries: 0,
  });
}

const workos = workosClient();
const userManagement = workos.userManagement;

/** Returns a request body: a string as is, anything else but `undefined` as JSON. */
function serializeBody(body) {
  if (body === undefined || typeof body === 'string') return body;
  return JSON.stringify(body);
}

/** Sends a request with fetch and returns the status, headers and JSON body. */
async function raw(method, path, { body, headers = {}, apiKey = API_KEY } = {}) {
  const requestHeaders = { ...headers };
  if (body !== undefined) requestHeaders['Content-Type'] = 'application/json';
  if (apiKey !== null) requestHeaders.Authorization = `Bearer ${apiKey}`;
  const response = await fetch(new URL(path, BASE_URL), {
    method,
    headers: requestHeaders,
    body: serializeBody(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    json: text ? JSON.parse(text) : undefined,
  };
}

async function createUser(prefix) {
  const email = uniqueEmail(prefix);
  const user = await userManagement.createUser({ email, password: PASSWORD, firstName: 'Ada' });
  return { email, user };
}

async function createOrganization(name) {
  return workos.organizations.createOrganization({ name: `${name} ${RUN}` });
}

async function signInSealed(email) {
  return userManagement.authenticateWithPassword({
    email,
    password: PASSWORD,
    session: { sealSession: true, cookiePassword: SDK_COOKIE_PASSWORD },
  });
}

function loadSession(sealedSession, cookiePassword = SDK_COOKIE_PASSWORD) {
  return userManagement.loadSealedSession({ sessionData: sealedSession, cookiePassword });
}

describe('users and memberships', () => {
  test('createUser and getUser round trip', async () => {
    const { email, user } = await createUser('create');
    assert.equal(user.object, 'user');
    assert.match(user.id, /^user_[0-9A-Z]{26}$/);
    assert.equal(user.email, email);
    assert.equal(user.firstName, 'Ada');
    assert.ok(user.createdAt instanceof Date);
    const fetched = await userManagement.getUser(user.id);
    assert.equal(fetched.id, user.id);
    assert.equal(fetched.email, email);
  });

  test('a taken email is a BadRequestException, case-insensitively', async () => {
    const { email } = await createUser('taken');
    await assert.rejects(
      userManagement.createUser({ email: email.toUpperCase(), password: PASSWORD }),
      (error) => error instanceof BadRequestException && error.code === 'user_creation_error',
    );
  });

  test('createOrganizationMembership and deleteOrganizationMembership', async () => {
    const { user } = await createUser('member');
    const organization = await createOrganization('Members');
    const membership = await userManagement.createOrganizationMembership({
      userId: user.id,
      organizationId: organization.id,
    });
    assert.equal(membership.object, 'organization_membership');
    assert.equal(membership.userId, user.id);
    assert.equal(membership.organizationId, organization.id);
    assert.equal(membership.organizationName, organization.name);
    assert.deepEqual(membership.role, { slug: 'member' });
    assert.equal(membership.status, 'active');
    await userManagement.deleteOrganizationMembership(membership.id);
    const again = await raw('DELETE', `/user_management/organization_memberships/${membership.id}`);
    assert.equal(again.status, 404);
    assert.equal(again.json.code, 'entity_not_found');
  });
});

describe('sign-in and sealed sessions', () => {
  let email;
  let organization;

  before(async () => {
    const created = await createUser('sealed');
    email = created.email;
    organization = await createOrganization('Sealed');
    await userManagement.createOrganizationMembership({ userId: created.user.id, organizationId: organization.id });
  });

  test('authenticateWithPassword seals a session that authenticate() verifies through the JWKS', async () => {
    const result = await signInSealed(email);
    assert.equal(result.organizationId, organization.id);
    assert.equal(result.authenticationMethod, 'Password');
    assert.equal(result.user.email, email);
    assert.ok(result.sealedSession.startsWith('Fe26.2*1*'));

    const authenticated = await loadSession(result.sealedSession).authenticate();
    assert.equal(authenticated.authenticated, true, JSON.stringify(authenticated));
    assert.equal(authenticated.organizationId, organization.id);
    assert.equal(authenticated.role, 'member');
    assert.deepEqual(authenticated.roles, ['member']);
    assert.deepEqual(authenticated.permissions, []);
    assert.equal(authenticated.entitlements, undefined, 'no Stripe customer is linked');
    assert.equal(authenticated.user.email, email);
    assert.match(authenticated.sessionId, /^session_/);
  });

  test('verifyAccessToken accepts a fresh token and rejects a tampered one', async () => {
    const result = await signInSealed(email);
    const claims = await userManagement.verifyAccessToken(result.accessToken);
    assert.ok(claims, 'the token verifies');
    assert.equal(claims.sub, result.user.id);
    assert.equal(claims.org_id, organization.id);
    assert.equal(typeof claims.auth_time, 'number');
    assert.equal(typeof claims.jti, 'string');
    const [header, payload, signature] = result.accessToken.split('.');
    const flipped = signature[5] === 'A' ? 'B' : 'A';
    const tampered = `${header}.${payload}.${signature.slice(0, 5)}${flipped}${signature.slice(6)}`;
    assert.equal(await userManagement.verifyAccessToken(tampered), null);
  });

  test('refresh() returns a new sealed session of the same session', async () => {
    const result = await signInSealed(email);
    const session = loadSession(result.sealedSession);
    const first = await session.authenticate();
    const refreshed = await session.refresh();
    assert.equal(refreshed.authenticated, true, JSON.stringify(refreshed));
    assert.notEqual(refreshed.sealedSession, result.sealedSession);
    assert.equal(refreshed.sessionId, first.sessionId);
    assert.equal(refreshed.organizationId, organization.id);
    assert.equal(refreshed.entitlements, undefined);
    assert.notEqual(refreshed.session.refreshToken, result.refreshToken);

    const reloaded = await loadSession(refreshed.sealedSession).authenticate();
    assert.equal(reloaded.authenticated, true, JSON.stringify(reloaded));
    assert.equal(reloaded.sessionId, first.sessionId);
    const again = await loadSession(refreshed.sealedSession).refresh();
    assert.equal(again.authenticated, true, JSON.stringify(again));
  });

  test('a repeated refresh within the grace window gets the same pair', async () => {
    const result = await signInSealed(email);
    const first = await userManagement.authenticateWithRefreshToken({
      refreshToken: result.refreshToken,
      organizationId: organization.id,
    });
    const second = await userManagement.authenticateWithRefreshToken({
      refreshToken: result.refreshToken,
      organizationId: organization.id,
    });
    assert.equal(second.accessToken, first.accessToken);
    assert.equal(second.refreshToken, first.refreshToken);
  });

  test('a revoked session refreshes to invalid_grant', async () => {
    const result = await signInSealed(email);
    const { sid } = decodeJwt(result.accessToken);
    await userManagement.revokeSession({ sessionId: sid });
    const refreshed = await loadSession(result.sealedSession).refresh();
    assert.equal(refreshed.authenticated, false);
    assert.equal(refreshed.reason, 'invalid_grant');
    assert.equal(refreshed.retryable, false);
  });

  test(
    'a refresh token reused after the grace window is invalid_grant and ends the session',
    { skip: GRACE_SECONDS > 5 && `REFRESH_GRACE_SECONDS is ${GRACE_SECONDS}; the Rust tests cover this` },
    async () => {
      const result = await signInSealed(email);
      const rotated = await loadSession(result.sealedSession).refresh();
      assert.equal(rotated.authenticated, true);
      await sleep(GRACE_SECONDS * 1000 + 500);
      const reused = await loadSession(result.sealedSession).refresh();
      assert.equal(reused.authenticated, false);
      assert.equal(reused.reason, 'invalid_grant');
      const current = await loadSession(rotated.sealedSession).refresh();
      assert.equal(current.reason, 'invalid_grant', 'the reuse revoked the session');
    },
  );

  test('bad refresh tokens get OauthException invalid_grant', async () => {
    for (const refreshToken of ['x', 'a.b.c.d.e', `${'A'.repeat(26)}.${'B'.repeat(26)}`]) {
      await assert.rejects(
        userManagement.authenticateWithRefreshToken({ refreshToken }),
        (error) => error instanceof OauthException && error.error === 'invalid_grant' && error.status === 400,
        refreshToken,
      );
    }
  });
});

describe('organization selection and switching', () => {
  let email;
  let acme;
  let globex;
  let stranger;

  before(async () => {
    const created = await createUser('switch');
    email = created.email;
    acme = await createOrganization('Acme');
    globex = await createOrganization('Globex');
    stranger = await createOrganization('Stranger');
    for (const organization of [acme, globex]) {
      await userManagement.createOrganizationMembership({ userId: created.user.id, organizationId: organization.id });
    }
  });

  test('several memberships require a choice, then refresh switches organization', async () => {
    let pendingAuthenticationToken;
    await assert.rejects(signInSealed(email), (error) => {
      assert.ok(error instanceof AuthenticationException, String(error));
      assert.equal(error.code, 'organization_selection_required');
      pendingAuthenticationToken = error.pendingAuthenticationToken;
      const names = error.rawData.organizations.map((organization) => organization.name).sort();
      assert.deepEqual(names, [acme.name, globex.name].sort());
      return true;
    });
    assert.ok(pendingAuthenticationToken);

    const selected = await userManagement.authenticateWithOrganizationSelection({
      pendingAuthenticationToken,
      organizationId: acme.id,
      session: { sealSession: true, cookiePassword: SDK_COOKIE_PASSWORD },
    });
    assert.equal(selected.organizationId, acme.id);

    const session = loadSession(selected.sealedSession);
    const refused = await session.refresh({ organizationId: stranger.id });
    assert.equal(refused.authenticated, false);
    assert.equal(refused.reason, 'invalid_grant');

    const switched = await session.refresh({ organizationId: globex.id });
    assert.equal(switched.authenticated, true, 'a refused switch does not burn the session');
    assert.equal(switched.organizationId, globex.id);
    const verified = await loadSession(switched.sealedSession).authenticate();
    assert.equal(verified.organizationId, globex.id);

    const kept = await loadSession(switched.sealedSession).refresh();
    assert.equal(kept.organizationId, globex.id, 'refresh() keeps the current organization');
  });
});

describe('JWKS', () => {
  test('a token verifies against its own JWKS only', { skip: !CLIENT_ID_2 && 'CLIENT_ID_2 is not set' }, async () => {
    const { email } = await createUser('jwks');
    const result = await userManagement.authenticateWithPassword({ email, password: PASSWORD });
    const own = createRemoteJWKSet(new URL(`/sso/jwks/${CLIENT_ID}`, BASE_URL));
    const { payload } = await jwtVerify(result.accessToken, own);
    assert.equal(payload.sub, result.user.id);

    const other = createRemoteJWKSet(new URL(`/sso/jwks/${CLIENT_ID_2}`, BASE_URL));
    await assert.rejects(jwtVerify(result.accessToken, other), joseErrors.JWKSNoMatchingKey);
  });

  test('unknown client JWKS is a JSON 404', async () => {
    const unknown = await raw('GET', '/sso/jwks/client_01ARZ3NDEKTSV4RRFFQ69G5FAV', { apiKey: null });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.code, 'entity_not_found');
    const own = await raw('GET', `/sso/jwks/${CLIENT_ID}`, { apiKey: null });
    assert.equal(own.status, 200);
    assert.ok(own.json.keys.length >= 1);
    for (const key of own.json.keys) {
      assert.deepEqual(Object.keys(key).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use']);
    }
  });
});

describe('the cookie route', { skip: !SERVER_COOKIE_PASSWORD && 'COOKIE_PASSWORD is not set' }, () => {
  test('refreshes an SDK-sealed cookie and returns one the SDK reads back', async () => {
    const { email, user } = await createUser('cookie');
    const organization = await createOrganization('Cookie');
    await userManagement.createOrganizationMembership({ userId: user.id, organizationId: organization.id });
    const result = await userManagement.authenticateWithPassword({
      email,
      password: PASSWORD,
      session: { sealSession: true, cookiePassword: SERVER_COOKIE_PASSWORD },
    });

    const response = await raw('GET', '/api/entitlements', {
      apiKey: null,
      headers: { Cookie: `theme=dark; wos-session=${result.sealedSession}` },
    });
    assert.equal(response.status, 200, JSON.stringify(response.json));
    assert.deepEqual(response.json, { entitlements: null });
    const setCookie = response.headers.get('set-cookie');
    assert.match(setCookie, /^wos-session=Fe26\.2\*[^;]+; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    const renewed = setCookie.slice('wos-session='.length, setCookie.indexOf(';'));

    const session = loadSession(renewed, SERVER_COOKIE_PASSWORD);
    const authenticated = await session.authenticate();
    assert.equal(authenticated.authenticated, true, JSON.stringify(authenticated));
    assert.equal(authenticated.organizationId, organization.id);
    assert.equal(authenticated.user.id, user.id);
    const refreshed = await session.refresh();
    assert.equal(refreshed.authenticated, true, 'the SDK refreshes the cookie the route set');

    const back = await raw('GET', '/api/entitlements', {
      apiKey: null,
      headers: { Cookie: `wos-session=${refreshed.sealedSession}` },
    });
    assert.equal(back.status, 200, 'the route refreshes the cookie the SDK set');
  });

  test('a missing or tampered cookie is a JSON 401', async () => {
    const missing = await raw('GET', '/api/entitlements', { apiKey: null });
    assert.equal(missing.status, 401);
    assert.equal(missing.json.code, 'no_session_cookie_provided');
    const { email } = await createUser('tampered');
    const result = await userManagement.authenticateWithPassword({
      email,
      password: PASSWORD,
      session: { sealSession: true, cookiePassword: SDK_COOKIE_PASSWORD },
    });
    const wrongPassword = await raw('GET', '/api/entitlements', {
      apiKey: null,
      headers: { Cookie: `wos-session=${result.sealedSession}` },
    });
    assert.equal(wrongPassword.status, 401);
    assert.equal(wrongPassword.json.code, 'invalid_session_cookie');
  });
});

/** Calls the Stripe emulator's control API. */
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
 * Connects the API key's environment to a new emulator account through the OAuth flow: the
 * consent form is posted directly and the redirect followed to the stack's callback.
 */
async function connectNewAccount() {
  const current = await raw('GET', '/stripe/connection');
  assert.equal(current.status, 200, JSON.stringify(current.json));
  if (current.json.connected) {
    const disconnected = await raw('DELETE', '/stripe/connection');
    assert.ok(disconnected.status < 300, `DELETE /stripe/connection answered ${disconnected.status}`);
  }
  const account = (await emulator('POST', '/_emulator/accounts', {})).id;
  const link = await raw('POST', '/stripe/connect');
  assert.equal(link.status, 201, JSON.stringify(link.json));
  const form = new URLSearchParams(new URL(link.json.authorize_url).searchParams);
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
  return account;
}

describe('entitlements in tokens', { skip: !STRIPE_EMULATOR_URL && 'STRIPE_EMULATOR_URL is not set' }, () => {
  test('sign-in, refresh and the cookie route carry the linked customer\'s entitlements', async () => {
    const account = await connectNewAccount();
    try {
      const { email, user } = await createUser('entitled');
      const organization = await createOrganization('Entitled');
      await userManagement.createOrganizationMembership({ userId: user.id, organizationId: organization.id });
      counter += 1;
      const customer = `cus_${RUN}x${counter}`;
      const setEntitlements = (lookupKeys) =>
        emulator('PUT', `/_emulator/accounts/${account}/customers/${customer}/entitlements`, {
          lookup_keys: lookupKeys,
        });
      await setEntitlements(['sso', 'audit-logs']);
      await workos.organizations.updateOrganization({ organization: organization.id, stripeCustomerId: customer });

      const cookiePassword = SERVER_COOKIE_PASSWORD ?? SDK_COOKIE_PASSWORD;
      const signedIn = await userManagement.authenticateWithPassword({
        email,
        password: PASSWORD,
        session: { sealSession: true, cookiePassword },
      });
      const session = userManagement.loadSealedSession({ sessionData: signedIn.sealedSession, cookiePassword });
      const verified = await session.authenticate();
      assert.equal(verified.authenticated, true, JSON.stringify(verified));
      assert.deepEqual(verified.entitlements, ['audit-logs', 'sso']);

      // Linking again reads the customer's current set from Stripe before it returns.
      await setEntitlements(['seats']);
      await workos.organizations.updateOrganization({ organization: organization.id, stripeCustomerId: null });
      await workos.organizations.updateOrganization({ organization: organization.id, stripeCustomerId: customer });
      const refreshed = await session.refresh();
      assert.equal(refreshed.authenticated, true, JSON.stringify(refreshed));
      assert.deepEqual(refreshed.entitlements, ['seats'], 'the refreshed token is computed at issue time');
      const reloaded = await userManagement
        .loadSealedSession({ sessionData: refreshed.sealedSession, cookiePassword })
        .authenticate();
      assert.deepEqual(reloaded.entitlements, ['seats']);

      if (SERVER_COOKIE_PASSWORD) {
        const viaCookie = await raw('GET', '/api/entitlements', {
          apiKey: null,
          headers: { Cookie: `wos-session=${refreshed.sealedSession}` },
        });
        assert.equal(viaCookie.status, 200, JSON.stringify(viaCookie.json));
        assert.deepEqual(viaCookie.json, { entitlements: ['seats'] });
      }
    } finally {
      await raw('DELETE', '/stripe/connection');
    }
  });
});

describe('bad input', () => {
  test('malformed authenticate requests get OAuth errors, never a 5xx', async () => {
    const cases = [
      [{ client_id: CLIENT_ID }, 'invalid_request'],
      [{ grant_type: 'authorization_code', client_id: CLIENT_ID }, 'unsupported_grant_type'],
      [{ grant_type: 'password', client_id: CLIENT_ID }, 'invalid_request'],
      [{ grant_type: 'refresh_token', client_id: CLIENT_ID, refresh_token: 5 }, 'invalid_request'],
      ['{"grant_type":', 'invalid_request'],
    ];
    for (const [body, error] of cases) {
      const response = await raw('POST', '/user_management/authenticate', { body });
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(response.json.error, error, JSON.stringify(body));
    }
    const otherClient = await raw('POST', '/user_management/authenticate', {
      body: {
        grant_type: 'password',
        client_id: 'client_01ARZ3NDEKTSV4RRFFQ69G5FAV',
        email: 'nobody@example.com',
        password: PASSWORD,
      },
    });
    assert.equal(otherClient.status, 400);
    assert.equal(otherClient.json.error, 'invalid_client');
    const oversized = await raw('POST', '/user_management/authenticate', {
      body: { grant_type: 'password', padding: 'x'.repeat(70_000) },
    });
    assert.equal(oversized.status, 413);
  });

  test('wrong credentials are invalid_credentials', async () => {
    const { email } = await createUser('wrong');
    await assert.rejects(
      userManagement.authenticateWithPassword({ email, password: 'not the password' }),
      (error) => error.status === 400 && error.code === 'invalid_credentials',
    );
  });
});
