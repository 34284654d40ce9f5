// The steps of the service's main story, shared by the end-to-end suite (e2e.test.mjs) and the
// demo (demo.mjs). An admin connects Stripe and the app links an organization to a Stripe
// customer. A member signs in, the customer buys and cancels a plan, and the admin disconnects
// Stripe.
//
// Everything outside the service is an official client: @workos-inc/node for the WorkOS API,
// the `stripe` package for Stripe's API and for signing webhook payloads, and Playwright with
// Chromium for the consent page. Plain fetch reaches only the routes no SDK covers (the Stripe
// connection routes, the webhook delivery Stripe would make, the service's cookie route) and the
// Stripe emulator's control API.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkOS } from '@workos-inc/node';
import Stripe from 'stripe';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { SESSION_COOKIE, createEntitlementsApp, listen } from './entitlements-app.mjs';

/** The Stripe platform key of the emulator (its default, and the local stack's built-in one). */
export const EMULATOR_SECRET_KEY = 'sk_test_emulator';

export const SUMMARY_UPDATED = 'entitlements.active_entitlement_summary.updated';

// The flags keep Chromium from contacting any service of its own: no QUIC, no background
// networking, no component updates, no sync.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The Chromium binary: CHROMIUM_PATH, or Debian's package. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const CALLBACK_PATH = '/stripe/oauth/callback';

/** An HTTP response that was not the expected one. */
export class UnexpectedResponse extends Error {
  constructor(what, status, body) {
    super(`${what} returned HTTP ${status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

async function readBody(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Returns the value of `name` in a `Set-Cookie` header list, or undefined. */
function cookieFromResponse(response, name) {
  for (const header of response.headers.getSetCookie()) {
    const [pair] = header.split(';');
    const separator = pair.indexOf('=');
    if (pair.slice(0, separator).trim() === name) {
      return decodeURIComponent(pair.slice(separator + 1).trim());
    }
  }
  return undefined;
}

/** Decodes the few HTML entities the emulator's consent page may use in attribute values. */
function decodeHtmlAttribute(value) {
  return value
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

/** Returns `count` lookup keys that are not in sorted order, with `first` keys leading. */
export function planLookupKeys(first, count) {
  const keys = [...first];
  for (let index = keys.length + 1; keys.length < count; index += 1) {
    keys.push(`feature-${String(index).padStart(2, '0')}`);
  }
  // Reversed, so the claim's sorting is visible.
  return keys.reverse();
}

/**
 * The clients and the state of one run of the story. `settings` contains the service's `baseUrl`
 * and the `apiKey` and `clientId` of its environment, the `emulatorUrl` of the Stripe emulator
 * the service uses, a `webhookSecret` the service accepts, and the service's `cookiePassword`.
 */
export class Story {
  constructor(settings) {
    this.settings = settings;
    const service = new URL(settings.baseUrl);
    this.workos = new WorkOS(settings.apiKey, {
      apiHostname: service.hostname,
      port: Number(service.port),
      https: service.protocol === 'https:',
      clientId: settings.clientId,
      // A retried request would hide the first response, which is the one that matters here.
      maxRetries: 0,
    });
    const emulator = new URL(settings.emulatorUrl);
    this.stripe = new Stripe(EMULATOR_SECRET_KEY, {
      host: emulator.hostname,
      port: Number(emulator.port),
      protocol: emulator.protocol.replace(':', ''),
      maxNetworkRetries: 0,
      telemetry: false,
    });
    this.jwks = createRemoteJWKSet(new URL(this.workos.userManagement.getJwksUrl(settings.clientId)));
    // Keeps the names of this run apart from earlier runs on the same store.
    this.run = randomUUID().replaceAll('-', '').slice(0, 10);
    this.app = null;
  }

  /** Sends a request to the service with the API key; returns the status and the parsed body. */
  async api(method, pathname, body) {
    const headers = { Authorization: `Bearer ${this.settings.apiKey}` };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
    }
    const response = await fetch(new URL(pathname, this.settings.baseUrl), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: await readBody(response) };
  }

  /** Calls the emulator's control API and returns the JSON body; throws on a non-2xx status. */
  async emulator(method, pathname, body) {
    const response = await fetch(new URL(pathname, this.settings.emulatorUrl), {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const parsed = await readBody(response);
    if (!response.ok) {
      throw new UnexpectedResponse(`${method} ${pathname} on the Stripe emulator`, response.status, parsed);
    }
    return parsed;
  }

  // ---- Step 1: the admin connects Stripe --------------------------------------------------

  /** `GET /stripe/connection`: the environment's connection status. */
  async connectionStatus() {
    const { status, body } = await this.api('GET', '/stripe/connection');
    if (status !== 200) {
      throw new UnexpectedResponse('GET /stripe/connection', status, body);
    }
    return body;
  }

  /** `DELETE /stripe/connection`: disconnects Stripe; returns the new status. */
  async disconnectStripe() {
    const { status, body } = await this.api('DELETE', '/stripe/connection');
    if (status !== 200) {
      throw new UnexpectedResponse('DELETE /stripe/connection', status, body);
    }
    return body;
  }

  /** `POST /stripe/connect`: a connect link; returns its `authorize_url`. */
  async requestConnectLink() {
    const { status, body } = await this.api('POST', '/stripe/connect');
    if (status !== 201) {
      throw new UnexpectedResponse('POST /stripe/connect', status, body);
    }
    return body.authorize_url;
  }

  /**
   * Opens the approval page in headless Chromium, clicks Approve and waits for the service's
   * callback page. Returns the callback's status, the page title, heading and text, and the path
   * of a screenshot saved in `artifactsDir` (when given). Fails when Chromium cannot start.
   */
  async approveInBrowser(authorizeUrl, { artifactsDir } = {}) {
    // Imported here so the demo runs where Playwright's package is present but unused.
    const { chromium } = await import('playwright-core');
    const profileParent = await mkdtemp(path.join(tmpdir(), 'e2e-browser-'));
    // launchPersistentContext passes the fresh folder as --user-data-dir.
    const context = await chromium.launchPersistentContext(path.join(profileParent, 'profile'), {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1000, height: 700 },
    });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(authorizeUrl);
      const consentTitle = await page.title();
      const callback = page.waitForResponse(
        (response) => new URL(response.url()).pathname === CALLBACK_PATH,
      );
      await page.getByRole('button', { name: 'Approve' }).click();
      const response = await callback;
      await page.waitForLoadState('load');

      let screenshot;
      if (artifactsDir) {
        await mkdir(artifactsDir, { recursive: true });
        screenshot = path.join(artifactsDir, 'e2e-connected.png');
        await page.screenshot({ path: screenshot, fullPage: true });
      }
      return {
        consentTitle,
        status: response.status(),
        title: await page.title(),
        heading: await page.getByRole('heading', { level: 1 }).textContent(),
        text: await page.locator('main').innerText(),
        screenshot,
      };
    } finally {
      await context.close();
      await rm(profileParent, { recursive: true, force: true });
    }
  }

  /**
   * Does what a browser does with the approval page, with fetch: loads the consent page, posts
   * its form with the Approve button's value, and follows the emulator's redirect to the
   * service's callback by hand. Returns the callback's status, title and text.
   */
  async approveWithFetch(authorizeUrl) {
    const consent = await fetch(authorizeUrl);
    const html = await consent.text();
    if (consent.status !== 200) {
      throw new UnexpectedResponse('the Stripe approval page', consent.status, html);
    }
    const form = html.match(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/);
    if (!form) {
      throw new Error('the Stripe approval page has no form');
    }
    const fields = new URLSearchParams();
    for (const input of form[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
      fields.append(input[1], decodeHtmlAttribute(input[2]));
    }
    fields.append('decision', 'approve');

    const decision = await fetch(new URL(decodeHtmlAttribute(form[1]), authorizeUrl), {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: fields,
      redirect: 'manual',
    });
    const location = decision.headers.get('location');
    if (decision.status !== 302 || !location) {
      throw new UnexpectedResponse('approving on the Stripe emulator', decision.status, await decision.text());
    }

    const callback = await fetch(new URL(location, authorizeUrl), { redirect: 'manual' });
    const page = await callback.text();
    const title = page.match(/<title>([^<]*)<\/title>/)?.[1] ?? '';
    const text = page
      .replace(/<head>[\s\S]*<\/head>/, '')
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    return { status: callback.status, title, text };
  }

  // ---- Step 2: the app links an organization to a Stripe customer -------------------------

  /** Creates an organization with the WorkOS SDK. */
  async createOrganization() {
    return this.workos.organizations.createOrganization({ name: `Acme ${this.run}` });
  }

  /** Creates a customer on the connected account with the Stripe SDK. */
  async createCustomer(account, organization) {
    return this.stripe.customers.create(
      {
        name: organization.name,
        email: `billing-${this.run}@example.com`,
        metadata: { organization_id: organization.id },
      },
      { stripeAccount: account },
    );
  }

  /** Sets the organization's `stripe_customer_id` with the WorkOS SDK. */
  async linkCustomer(organizationId, customerId) {
    return this.workos.organizations.updateOrganization({
      organization: organizationId,
      stripeCustomerId: customerId,
    });
  }

  // ---- Step 3: a member signs in ----------------------------------------------------------

  /** Creates a user and makes it a member of the organization; returns the user and password. */
  async createMember(organizationId) {
    const email = `member-${this.run}@example.com`;
    const password = `pw-${randomBytes(12).toString('base64url')}`;
    const user = await this.workos.userManagement.createUser({
      email,
      password,
      firstName: 'Ada',
      lastName: 'Lovelace',
      emailVerified: true,
    });
    const membership = await this.workos.userManagement.createOrganizationMembership({
      organizationId,
      userId: user.id,
    });
    return { user, membership, email, password };
  }

  /** Signs in with the password grant and returns the SDK's result with its sealed session. */
  async signIn(email, password) {
    return this.workos.userManagement.authenticateWithPassword({
      clientId: this.settings.clientId,
      email,
      password,
      session: { sealSession: true, cookiePassword: this.settings.cookiePassword },
    });
  }

  // ---- Steps 4 and 6: the customer buys and cancels a plan --------------------------------

  /** Replaces the customer's active entitlements in the emulator, as a subscription change does. */
  async setEntitlements(account, customer, lookupKeys) {
    return this.emulator('PUT', `/_emulator/accounts/${account}/customers/${customer}/entitlements`, {
      lookup_keys: lookupKeys,
    });
  }

  /**
   * Delivers `entitlements.active_entitlement_summary.updated` for the customer to the service's
   * webhook route, as Stripe does. The emulator renders the event from its current state and
   * signs it with a throwaway secret. The Stripe library then signs it again with the service's
   * webhook secret, and only that signature can pass. Returns the delivery's status and body.
   */
  async deliverSummaryUpdated(account, customer) {
    const built = await this.emulator('POST', '/_emulator/events', {
      type: SUMMARY_UPDATED,
      account,
      customer,
      secret: `whsec_throwaway${this.run}`,
    });
    const payload = built.payload;
    const signature = this.stripe.webhooks.generateTestHeaderString({
      payload,
      secret: this.settings.webhookSecret,
    });
    const response = await fetch(new URL('/webhooks/stripe', this.settings.baseUrl), {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json; charset=utf-8',
        'Stripe-Signature': signature,
      },
      body: payload,
    });
    return { status: response.status, body: await readBody(response), event: built.event };
  }

  /** Returns the emulator's log of entitlement list requests, oldest first. */
  async entitlementListRequests() {
    const { requests } = await this.emulator('GET', '/_emulator/requests');
    return requests.filter((request) => request.path === '/v1/entitlements/active_entitlements');
  }

  // ---- Step 5: the app and the service refresh the session --------------------------------

  /** Starts the Express app on 127.0.0.1; `stopApp` stops it. */
  async startApp() {
    const app = createEntitlementsApp({
      workos: this.workos,
      cookiePassword: this.settings.cookiePassword,
    });
    this.app = await listen(app);
    return this.app.url;
  }

  async stopApp() {
    await this.app?.close();
    this.app = null;
  }

  /**
   * Sends `GET /api/entitlements` with the sealed cookie to `baseUrl` (the Express app or the
   * service). Returns the status, the body and the new sealed cookie (undefined when none is set).
   */
  async refreshAt(baseUrl, sealedSession) {
    const response = await fetch(new URL('/api/entitlements', baseUrl), {
      headers: { Cookie: `${SESSION_COOKIE}=${sealedSession}` },
    });
    return {
      status: response.status,
      body: await readBody(response),
      sealedSession: cookieFromResponse(response, SESSION_COOKIE),
    };
  }

  // ---- Token checks -----------------------------------------------------------------------

  /**
   * Reads and verifies the access token inside a sealed session three ways, each through the
   * service's JWKS URL: jose's `jwtVerify`, the SDK's `verifyAccessToken`, and the SDK's
   * `loadSealedSession(...).authenticate()`. Returns the token, its verified claims and the
   * SDK's results; `claims` is null when jose rejects the token.
   */
  async verifySession(sealedSession) {
    const cookie = await this.workos.userManagement.getSessionFromCookie({
      sessionData: sealedSession,
      cookiePassword: this.settings.cookiePassword,
    });
    const accessToken = cookie?.accessToken;
    if (!accessToken) {
      throw new Error('the sealed session does not unseal to an access token');
    }
    let claims = null;
    let header = null;
    try {
      const verified = await jwtVerify(accessToken, this.jwks);
      claims = verified.payload;
      header = verified.protectedHeader;
    } catch (error) {
      claims = null;
      header = { error: error.message };
    }
    const sdkClaims = await this.workos.userManagement.verifyAccessToken(accessToken);
    const authentication = await this.workos.userManagement
      .loadSealedSession({ sessionData: sealedSession, cookiePassword: this.settings.cookiePassword })
      .authenticate();
    return {
      accessToken,
      header,
      claims,
      decoded: decodeJwt(accessToken),
      sdkClaims,
      authentication,
    };
  }
}
