// End-to-end test of the main story, through public interfaces and official clients only. An
// admin connects Stripe in headless Chromium, and the app links an organization to a Stripe
// customer. A member signs in, the customer buys a plan and cancels it, and the admin disconnects
// Stripe. After each change the next refreshed access token carries the expected `entitlements`
// claim. Two clients refresh: an Express app that uses the WorkOS Node SDK as the WorkOS
// documentation shows, and the service's own cookie route. The steps run in order. After a failed
// step the later ones are skipped, and the suite fails.
//
// Environment variables (scripts/test.sh sets them all):
//   BASE_URL               the local stack's base URL, such as http://127.0.0.1:8080
//   API_KEY                an API key of a test-mode environment of that stack
//   CLIENT_ID              that environment's client ID
//   STRIPE_EMULATOR_URL    the Stripe emulator's base URL, such as http://127.0.0.1:12111
//   STRIPE_WEBHOOK_SECRET  a webhook signing secret the stack accepts (one of STRIPE_WEBHOOK_SECRETS)
//   COOKIE_PASSWORD        the stack's COOKIE_PASSWORD
//   CHROMIUM_PATH          optional; the Chromium binary (default /usr/bin/chromium). Without a
//                          working Chromium the suite fails.
//   BROWSER_ARTIFACTS_DIR  optional; the folder for the screenshot of the callback page
// The stack must use the emulator: STRIPE_API_BASE and STRIPE_CONNECT_BASE set to its URL,
// STRIPE_SECRET_KEY=sk_test_emulator and STRIPE_CLIENT_ID=ca_emulator.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Story, SUMMARY_UPDATED, planLookupKeys } from './e2e/story.mjs';

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set; run these tests through scripts/test.sh`);
  }
  return value;
}

const story = new Story({
  baseUrl: requiredEnv('BASE_URL'),
  apiKey: requiredEnv('API_KEY'),
  clientId: requiredEnv('CLIENT_ID'),
  emulatorUrl: requiredEnv('STRIPE_EMULATOR_URL'),
  webhookSecret: requiredEnv('STRIPE_WEBHOOK_SECRET'),
  cookiePassword: requiredEnv('COOKIE_PASSWORD'),
});

// Twelve keys: more than the ten a summary event embeds, so the claim can only be right when the
// service lists the customer's entitlements from Stripe and reads past the event's sample.
const PLAN = planLookupKeys(['analytics', 'audit-logs'], 12);
const PLAN_SORTED = [...PLAN].sort();

/** What the steps share: the Stripe account, the organization, the customer and the cookie. */
const shared = {};
let failedStep = null;

/** Declares a step that is skipped once an earlier step has failed. */
function step(name, body) {
  test(name, async (t) => {
    if (failedStep) {
      t.skip(`step "${failedStep}" failed`);
      return;
    }
    try {
      await body(t);
    } catch (error) {
      failedStep = name;
      throw error;
    }
  });
}

/**
 * Checks a sealed session's access token through the JWKS URL (jose, the SDK's
 * verifyAccessToken and loadSealedSession().authenticate()) and returns its verified claims.
 */
async function verifiedClaims(sealedSession) {
  const verified = await story.verifySession(sealedSession);
  assert.notEqual(verified.claims, null, `jose verifies the token through the JWKS URL: ${JSON.stringify(verified.header)}`);
  assert.equal(verified.header.alg, 'RS256');
  assert.ok(verified.header.kid, 'the token header has a kid');
  assert.notEqual(verified.sdkClaims, null, 'the SDK verifyAccessToken accepts the token');
  assert.equal(verified.authentication.authenticated, true, `authenticate(): ${JSON.stringify(verified.authentication)}`);
  assert.equal(verified.claims.sub, shared.user.id);
  assert.equal(verified.claims.org_id, shared.organization.id);
  assert.equal(verified.claims.sid, verified.authentication.sessionId);
  return { claims: verified.claims, authentication: verified.authentication };
}

/**
 * Refreshes the session through the Express app, then through the service's cookie route, each
 * with the cookie the previous refresh set, and checks that both return `expected` and that the
 * service's new token carries it. Leaves the newest cookie in `shared.sealedSession`.
 */
async function refreshBothWays(expected) {
  const viaApp = await story.refreshAt(shared.appUrl, shared.sealedSession);
  assert.equal(viaApp.status, 200, `the Express app refreshes the session: ${JSON.stringify(viaApp.body)}`);
  assert.deepEqual(viaApp.body, { entitlements: expected }, 'entitlements from the Express app');
  assert.ok(viaApp.sealedSession, 'the Express app sets a new wos-session cookie');
  const appToken = await verifiedClaims(viaApp.sealedSession);

  const viaService = await story.refreshAt(story.settings.baseUrl, viaApp.sealedSession);
  assert.equal(viaService.status, 200, `the service refreshes the cookie: ${JSON.stringify(viaService.body)}`);
  assert.deepEqual(viaService.body, { entitlements: expected }, 'entitlements from GET /api/entitlements');
  assert.ok(viaService.sealedSession, 'the service sets a new wos-session cookie');
  const serviceToken = await verifiedClaims(viaService.sealedSession);
  assert.equal(serviceToken.claims.sid, appToken.claims.sid, 'both refreshes keep the session');

  shared.sealedSession = viaService.sealedSession;
  return { appToken, serviceToken };
}

describe('main story end to end', () => {
  before(async () => {
    // Starts from a disconnected environment; DELETE is harmless when nothing is connected.
    const reset = await story.disconnectStripe();
    assert.equal(reset.connected, false);
  });

  after(async () => {
    await story.stopApp();
    await story.disconnectStripe().catch(() => {});
  });

  step('1. admin connects Stripe in a browser', async (t) => {
    const authorizeUrl = await story.requestConnectLink();
    const emulatorBase = story.settings.emulatorUrl.replace(/\/$/, '');
    assert.ok(
      authorizeUrl.startsWith(`${emulatorBase}/oauth/authorize?`),
      `authorize_url ${authorizeUrl} points at the emulator`,
    );

    const page = await story.approveInBrowser(authorizeUrl, {
      artifactsDir: process.env.BROWSER_ARTIFACTS_DIR,
    });
    assert.equal(page.consentTitle, 'Connect your Stripe account – Stripe emulator');
    assert.equal(page.status, 200);
    assert.equal(page.title, 'Stripe is connected');
    assert.equal(page.heading, 'Stripe is connected');
    assert.match(page.text, /Stripe is connected\. You can close this tab\./);
    if (page.screenshot) {
      t.diagnostic(`screenshot: ${page.screenshot}`);
    }

    const status = await story.connectionStatus();
    assert.equal(status.connected, true);
    assert.match(status.account_id, /^acct_/);
    assert.equal(status.livemode, false);
    assert.equal(status.entitlements_enabled, true);
    shared.account = status.account_id;
  });

  step('2. app links an organization to a Stripe customer', async () => {
    shared.organization = await story.createOrganization();
    assert.match(shared.organization.id, /^org_/);

    shared.customer = await story.createCustomer(shared.account, shared.organization);
    assert.match(shared.customer.id, /^cus_/);
    assert.equal(shared.customer.metadata.organization_id, shared.organization.id);
    const account = await story.emulator('GET', `/_emulator/accounts/${shared.account}`);
    assert.ok(
      JSON.stringify(account.customers).includes(shared.customer.id),
      `the customer was created on the connected account: ${JSON.stringify(account)}`,
    );

    const linked = await story.linkCustomer(shared.organization.id, shared.customer.id);
    assert.equal(linked.id, shared.organization.id);
    assert.equal(linked.stripeCustomerId, shared.customer.id);
    const fetched = await story.workos.organizations.getOrganization(shared.organization.id);
    assert.equal(fetched.stripeCustomerId, shared.customer.id);
  });

  step('3. member signs in with a sealed session', async () => {
    const member = await story.createMember(shared.organization.id);
    shared.user = member.user;
    assert.match(member.user.id, /^user_/);
    assert.equal(member.membership.organizationId, shared.organization.id);
    assert.equal(member.membership.userId, member.user.id);

    const signedIn = await story.signIn(member.email, member.password);
    assert.equal(signedIn.user.id, member.user.id);
    assert.equal(signedIn.organizationId, shared.organization.id);
    assert.equal(signedIn.authenticationMethod, 'Password');
    assert.match(signedIn.sealedSession, /^Fe26\.2\*1\*/);
    shared.sealedSession = signedIn.sealedSession;

    const { claims, authentication } = await verifiedClaims(signedIn.sealedSession);
    assert.deepEqual(claims.entitlements, [], 'a linked customer without a plan has an empty claim');
    assert.deepEqual(authentication.entitlements, []);
    assert.equal(authentication.user.id, member.user.id);
  });

  step('4. customer buys a plan and Stripe sends the event', async () => {
    const set = await story.setEntitlements(shared.account, shared.customer.id, PLAN);
    assert.equal(set.entitlements.length, PLAN.length);
    const listsBefore = (await story.entitlementListRequests()).length;

    const delivery = await story.deliverSummaryUpdated(shared.account, shared.customer.id);
    assert.equal(delivery.status, 200, `POST /webhooks/stripe: ${JSON.stringify(delivery.body)}`);
    assert.equal(delivery.body.result, 'applied', `webhook outcome: ${JSON.stringify(delivery.body)}`);
    assert.equal(delivery.event.type, SUMMARY_UPDATED);
    assert.equal(delivery.event.data.object.entitlements.has_more, true, 'the event embeds only a sample');

    const lists = (await story.entitlementListRequests()).slice(listsBefore);
    assert.ok(lists.length >= 1, 'the service listed the entitlements from Stripe');
    for (const request of lists) {
      assert.equal(request.stripe_account, shared.account, 'the list call names the connected account');
      const query = new URLSearchParams(request.query);
      assert.equal(query.get('customer'), shared.customer.id);
      assert.equal(query.get('limit'), '100');
      assert.equal(request.status, 200);
    }

    // The session signed in before the purchase still carries the old claim until it refreshes.
    const { claims } = await verifiedClaims(shared.sealedSession);
    assert.deepEqual(claims.entitlements, []);
  });

  step('5. next refresh carries the new entitlements', async () => {
    shared.appUrl = await story.startApp();
    const { appToken, serviceToken } = await refreshBothWays(PLAN_SORTED);
    assert.deepEqual(appToken.claims.entitlements, PLAN_SORTED);
    assert.deepEqual(appToken.authentication.entitlements, PLAN_SORTED);
    assert.deepEqual(serviceToken.claims.entitlements, PLAN_SORTED);
  });

  step('6. cancellation empties the entitlements', async () => {
    await story.setEntitlements(shared.account, shared.customer.id, []);
    const delivery = await story.deliverSummaryUpdated(shared.account, shared.customer.id);
    assert.equal(delivery.status, 200, `POST /webhooks/stripe: ${JSON.stringify(delivery.body)}`);
    assert.equal(delivery.body.result, 'applied', `webhook outcome: ${JSON.stringify(delivery.body)}`);

    const { appToken, serviceToken } = await refreshBothWays([]);
    assert.deepEqual(appToken.claims.entitlements, []);
    assert.deepEqual(serviceToken.claims.entitlements, []);
  });

  step('7. disconnect removes the claim from new tokens', async () => {
    const status = await story.disconnectStripe();
    assert.equal(status.connected, false);
    assert.equal(status.account_id, null);
    const account = await story.emulator('GET', `/_emulator/accounts/${shared.account}`);
    assert.equal(account.connected, false, 'the service deauthorized the account on Stripe');

    const { appToken, serviceToken } = await refreshBothWays(null);
    for (const [source, token] of [['Express app', appToken], ['service', serviceToken]]) {
      assert.equal(
        Object.hasOwn(token.claims, 'entitlements'),
        false,
        `the token from the ${source} has no entitlements claim: ${JSON.stringify(token.claims)}`,
      );
      assert.equal(token.authentication.entitlements, undefined);
    }
  });
});
