// Runs the service's main story against a running local stack and explains each step. An admin
// connects Stripe, and the app links an organization to a Stripe customer. A member signs in, the
// customer buys a plan and cancels it, and the admin disconnects Stripe. The demo prints the
// access token's claims after the sign-in, the purchase, the cancellation and the disconnect.
//
// Start the local stack in one terminal, from the repository root:
//   cargo run -p local-stack --bin local-stack -- --credentials-file .local/credentials.json
// then, in another:
//   npm ci --prefix tests/node && node tests/node/demo.mjs
//
// Every run creates a new organization, customer and user, and ends with Stripe disconnected.
// When the environment has entitlements turned off, the demo turns them on first.
// Run `node tests/node/demo.mjs --help` for the options.
import { access, constants, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CHROMIUM_PATH, Story, planLookupKeys } from './e2e/story.mjs';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const START_COMMAND =
  'cargo run -p local-stack --bin local-stack -- --credentials-file .local/credentials.json';

const HELP = `Usage: node tests/node/demo.mjs [options]

Runs the main story against a local stack that is already running (start it with
  ${START_COMMAND}).

Options:
  --credentials-file PATH  the stack's credentials file, written on its first start
                           (default: .local/credentials.json in the repository)
  --data-dir PATH          the stack's data folder, for local-secrets.json
                           (default: .local/data in the repository)
  --emulator-url URL       the Stripe emulator the stack started (default: http://127.0.0.1:12111)
  --no-browser             approve the Stripe connection with plain HTTP requests, even when
                           Chromium is installed
  --help                   print this help

Environment variables override the files: BASE_URL, API_KEY, CLIENT_ID (instead of the
credentials file), COOKIE_PASSWORD and STRIPE_WEBHOOK_SECRET (instead of local-secrets.json,
needed when the stack was started with COOKIE_PASSWORD or STRIPE_WEBHOOK_SECRETS set),
STRIPE_EMULATOR_URL, and CHROMIUM_PATH (default /usr/bin/chromium).`;

/** A problem with the demo's setup, printed without a stack trace. */
class SetupError extends Error {}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      'credentials-file': { type: 'string', default: path.join(ROOT, '.local', 'credentials.json') },
      'data-dir': { type: 'string', default: path.join(ROOT, '.local', 'data') },
      'emulator-url': { type: 'string' },
      'no-browser': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  return values;
}

async function readJsonFile(file, whatFor) {
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error.code === 'ENOENT') {
      throw new SetupError(`${file} is missing. ${whatFor}`);
    }
    throw error;
  }
  return JSON.parse(text);
}

/** Collects the stack's URL, credentials and secrets from the environment and the stack's files. */
async function loadSettings(options) {
  let credentials = {};
  if (!process.env.API_KEY || !process.env.CLIENT_ID) {
    credentials = await readJsonFile(
      options['credentials-file'],
      'The local stack writes it only on its first start with an empty store, when started with ' +
        `--credentials-file:\n  ${START_COMMAND}\n` +
        'If the store already has an environment, set API_KEY and CLIENT_ID to the values it ' +
        'printed, or stop the stack, delete .local/data and start it again with that flag.',
    );
  } else if (!process.env.BASE_URL) {
    // With API_KEY and CLIENT_ID set but not BASE_URL, the stack's URL still comes from the
    // credentials file when it exists, so a stack on another --port is found.
    credentials = await readJsonFile(options['credentials-file'], '').catch((error) => {
      if (error instanceof SetupError) {
        return {};
      }
      throw error;
    });
  }

  let secrets = {};
  if (!process.env.COOKIE_PASSWORD || !process.env.STRIPE_WEBHOOK_SECRET) {
    secrets = await readJsonFile(
      path.join(options['data-dir'], 'local-secrets.json'),
      'The local stack creates it in its data folder; pass --data-dir when the stack uses another one.',
    );
  }

  return {
    baseUrl: process.env.BASE_URL ?? credentials.base_url ?? 'http://127.0.0.1:8080',
    apiKey: process.env.API_KEY ?? credentials.api_key,
    clientId: process.env.CLIENT_ID ?? credentials.client_id,
    emulatorUrl:
      options['emulator-url'] ?? process.env.STRIPE_EMULATOR_URL ?? 'http://127.0.0.1:12111',
    cookiePassword: process.env.COOKIE_PASSWORD ?? secrets.cookie_password,
    webhookSecret: process.env.STRIPE_WEBHOOK_SECRET ?? secrets.webhook_secret,
  };
}

/** Throws a SetupError unless the stack and its emulator respond to HTTP requests. */
async function checkReachable(settings) {
  const targets = [
    ['the local stack', new URL(`/sso/jwks/${settings.clientId}`, settings.baseUrl)],
    ['the Stripe emulator', new URL('/_emulator/failures', settings.emulatorUrl)],
  ];
  for (const [name, url] of targets) {
    try {
      await fetch(url);
    } catch (error) {
      throw new SetupError(
        `Cannot reach ${name} at ${url.origin} (${error.cause?.code ?? error.message}). ` +
          `Start the local stack first:\n  ${START_COMMAND}`,
      );
    }
  }
}

async function chromiumAvailable() {
  try {
    await access(CHROMIUM_PATH, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function say(text) {
  console.log(`\n${text}`);
}

function detail(text) {
  console.log(`   ${text}`);
}

function printClaims(title, claims) {
  console.log(`\n   ${title}:`);
  console.log(
    JSON.stringify(claims, null, 2)
      .split('\n')
      .map((line) => `   ${line}`)
      .join('\n'),
  );
}

/** Throws when `actual` and `expected` differ as JSON, naming what was checked. */
function expectEqual(actual, expected, what) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** Verifies the token inside a sealed session through the JWKS URL and returns its claims. */
async function verifiedClaims(story, sealedSession) {
  const verified = await story.verifySession(sealedSession);
  if (!verified.claims || !verified.sdkClaims || !verified.authentication.authenticated) {
    throw new Error(`the access token does not verify through the JWKS URL: ${JSON.stringify(verified.header)}`);
  }
  return verified.claims;
}

/** Refreshes through the Express app, then the service's cookie route; returns the last claims. */
async function refreshBothWays(story, state, expected) {
  const viaApp = await story.refreshAt(state.appUrl, state.sealedSession);
  expectEqual(viaApp.status, 200, `the Express app's refresh (${JSON.stringify(viaApp.body)})`);
  expectEqual(viaApp.body.entitlements, expected, "the Express app's entitlements");
  detail(`The Express app refreshed the session: ${JSON.stringify(viaApp.body)}`);
  await verifiedClaims(story, viaApp.sealedSession);

  const viaService = await story.refreshAt(story.settings.baseUrl, viaApp.sealedSession);
  expectEqual(viaService.status, 200, `GET /api/entitlements (${JSON.stringify(viaService.body)})`);
  expectEqual(viaService.body.entitlements, expected, 'the entitlements of GET /api/entitlements');
  detail(`The service's own GET /api/entitlements agrees: ${JSON.stringify(viaService.body)}`);
  state.sealedSession = viaService.sealedSession;
  return verifiedClaims(story, viaService.sealedSession);
}

/**
 * Turns the `entitlements` claim on when the environment has it off. The setting survives a
 * disconnect and a reconnect, so an earlier `PUT /stripe/connection` with `false` would otherwise
 * fail the demo's first claim check.
 */
async function enableEntitlements(story) {
  const connection = await story.connectionStatus();
  if (connection.entitlements_enabled) {
    return;
  }
  const { status, body } = await story.api('PUT', '/stripe/connection', { entitlements_enabled: true });
  expectEqual(status, 200, `PUT /stripe/connection (${JSON.stringify(body)})`);
  expectEqual(body.entitlements_enabled, true, 'PUT /stripe/connection: entitlements_enabled');
  console.log(
    'Entitlements were turned off for this environment (entitlements_enabled: false); ' +
      'turned them on with PUT /stripe/connection.',
  );
}

async function connectStripe(story, useBrowser) {
  const status = await story.connectionStatus();
  if (status.connected) {
    await story.disconnectStripe();
    detail(`Stripe was connected to ${status.account_id}; disconnected it to start over.`);
  }
  const authorizeUrl = await story.requestConnectLink();
  detail(`POST /stripe/connect returned an approval link on the Stripe emulator:\n   ${authorizeUrl}`);

  let page;
  if (useBrowser) {
    page = await story.approveInBrowser(authorizeUrl);
    detail(`Headless Chromium opened it and clicked Approve. The callback page says: "${page.heading}".`);
  } else {
    page = await story.approveWithFetch(authorizeUrl);
    detail('Posted its approval form with fetch, as a browser would, and followed the redirect.');
    detail(`The callback page says: "${page.title}".`);
  }
  expectEqual(page.title, 'Stripe is connected', 'the title of the callback page');

  const connected = await story.connectionStatus();
  expectEqual(connected.connected, true, 'GET /stripe/connection: connected');
  detail(`GET /stripe/connection: connected to ${connected.account_id} (livemode ${connected.livemode}).`);
  return connected.account_id;
}

async function runStory(story, useBrowser) {
  const state = {};

  say('1. The admin connects the app\'s Stripe account (Stripe Connect OAuth).');
  const account = await connectStripe(story, useBrowser);

  say('2. The app creates an organization and its Stripe customer, and links them.');
  const organization = await story.createOrganization();
  detail(`workos.organizations.createOrganization: ${organization.id} "${organization.name}".`);
  const customer = await story.createCustomer(account, organization);
  detail(`stripe.customers.create on ${account}: ${customer.id}.`);
  const linked = await story.linkCustomer(organization.id, customer.id);
  expectEqual(linked.stripeCustomerId, customer.id, 'the linked stripeCustomerId');
  detail(`workos.organizations.updateOrganization set stripeCustomerId = ${linked.stripeCustomerId}.`);

  say('3. A user joins the organization and signs in with a password.');
  const member = await story.createMember(organization.id);
  detail(`Created ${member.user.email} (${member.user.id}) and its membership.`);
  const signedIn = await story.signIn(member.email, member.password);
  state.sealedSession = signedIn.sealedSession;
  detail('authenticateWithPassword returned a sealed wos-session cookie.');
  const signInClaims = await verifiedClaims(story, state.sealedSession);
  expectEqual(signInClaims.entitlements, [], 'the entitlements after the sign-in');
  printClaims('Access token claims after sign-in (verified through the JWKS URL; no plan yet)', signInClaims);

  say('4. The customer buys a plan. Stripe tells the service with a webhook.');
  const plan = planLookupKeys(['analytics', 'audit-logs'], 12);
  await story.setEntitlements(account, customer.id, plan);
  detail(`The emulator now reports ${plan.length} active entitlements for ${customer.id}.`);
  const bought = await story.deliverSummaryUpdated(account, customer.id);
  expectEqual(bought.status, 200, `POST /webhooks/stripe (${JSON.stringify(bought.body)})`);
  detail(`Delivered ${bought.event.type}, signed with the stripe library: ${JSON.stringify(bought.body)}.`);
  detail('The event carries at most 10 entitlements; the service lists all of them from Stripe.');

  say('5. The next session refresh carries the new entitlements.');
  state.appUrl = await story.startApp();
  detail(`An Express app like the WorkOS docs' example runs on ${state.appUrl}.`);
  const purchasedClaims = await refreshBothWays(story, state, [...plan].sort());
  printClaims('Access token claims after the purchase', purchasedClaims);

  say('6. The customer cancels. Stripe sends the event again; the entitlements empty.');
  await story.setEntitlements(account, customer.id, []);
  const canceled = await story.deliverSummaryUpdated(account, customer.id);
  expectEqual(canceled.status, 200, `POST /webhooks/stripe (${JSON.stringify(canceled.body)})`);
  detail(`Delivered ${canceled.event.type}: ${JSON.stringify(canceled.body)}.`);
  const canceledClaims = await refreshBothWays(story, state, []);
  printClaims('Access token claims after the cancellation', canceledClaims);

  say('7. The admin disconnects Stripe. New tokens no longer carry the claim.');
  const disconnected = await story.disconnectStripe();
  expectEqual(disconnected.connected, false, 'DELETE /stripe/connection: connected');
  detail('DELETE /stripe/connection: disconnected, and the stored entitlements are deleted.');
  const disconnectedClaims = await refreshBothWays(story, state, null);
  if (Object.hasOwn(disconnectedClaims, 'entitlements')) {
    throw new Error('the token after the disconnect still has an entitlements claim');
  }
  printClaims('Access token claims after the disconnect (no entitlements claim)', disconnectedClaims);
}

async function main() {
  const options = parseOptions();
  if (options.help) {
    console.log(HELP);
    return;
  }
  const settings = await loadSettings(options);
  await checkReachable(settings);
  const useBrowser = !options['no-browser'] && (await chromiumAvailable());
  if (!useBrowser && !options['no-browser']) {
    console.log(`No Chromium at ${CHROMIUM_PATH}: the demo approves with plain HTTP requests.`);
  }

  console.log(`Service: ${settings.baseUrl} (client ID ${settings.clientId})`);
  console.log(`Stripe emulator: ${settings.emulatorUrl}`);
  const story = new Story(settings);
  await enableEntitlements(story);
  const started = Date.now();
  try {
    await runStory(story, useBrowser);
  } finally {
    await story.stopApp();
  }
  say(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s: every step worked.`);
}

try {
  await main();
} catch (error) {
  if (error instanceof SetupError) {
    console.error(`\n${error.message}`);
  } else {
    console.error('\nThe demo failed:', error);
  }
  process.exitCode = 1;
}
