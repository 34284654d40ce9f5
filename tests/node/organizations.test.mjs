// Black-box tests of the /organizations routes. They drive a running local stack with the official
// WorkOS Node SDK, and with plain fetch for requests the SDK cannot send. Environment variables:
//   BASE_URL   the stack's base URL, such as http://127.0.0.1:8080
//   API_KEY    an API key of one environment
//   CLIENT_ID  that environment's client ID
//   API_KEY_2  an API key of a second environment of the same stack
// scripts/test.sh starts a stack on each store and sets these variables.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  ConflictException,
  NotFoundException,
  UnauthorizedException,
  UnprocessableEntityException,
  WorkOS,
} from '@workos-inc/node';

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
const API_KEY_2 = requiredEnv('API_KEY_2');

// Keeps names, external IDs and customer IDs of this run apart from earlier runs on the same store.
const RUN = randomUUID().replaceAll('-', '').slice(0, 10);
let counter = 0;

function unique(prefix) {
  counter += 1;
  return `${prefix}-${RUN}-${counter}`;
}

/** Returns a Stripe customer ID (`cus_` and letters and digits) that no other test uses. */
function newCustomerId() {
  counter += 1;
  return `cus_${RUN}x${counter}`;
}

/** Returns a syntactically valid organization ID that no organization has. */
function unknownOrganizationId() {
  return 'org_01ARZ3NDEKTSV4RRFFQ69G5FAV';
}

function workosClient(apiKey) {
  const url = new URL(BASE_URL);
  return new WorkOS(apiKey, {
    apiHostname: url.hostname,
    port: Number(url.port),
    https: false,
    clientId: CLIENT_ID,
    // A retried 5xx would hide the first response, which is the one under test.
    maxRetries: 0,
  });
}

const workos = workosClient(API_KEY);
const organizations = workos.organizations;

/** Sends a request with fetch and returns the status, headers and the body as text and JSON. */
async function raw(method, path, { body, apiKey = API_KEY, headers = {} } = {}) {
  const requestHeaders = { 'Content-Type': 'application/json', ...headers };
  if (apiKey !== null) {
    requestHeaders.Authorization = `Bearer ${apiKey}`;
  }
  const response = await fetch(new URL(path, BASE_URL), { method, headers: requestHeaders, body });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** Awaits `promise`, fails when it resolves, and returns the error it was rejected with. */
async function rejectionOf(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected the call to be rejected, but it resolved');
}

/** Checks that `error` is the SDK exception `type` with HTTP `status` and a request ID. */
function assertException(error, type, status) {
  assert.ok(
    error instanceof type,
    `expected ${type.name}, got ${error?.name}: ${error?.message}`,
  );
  assert.equal(error.status, status);
  assert.equal(typeof error.requestID, 'string');
  assert.notEqual(error.requestID, '', 'the exception carries the X-Request-ID header');
}

/** Checks that a raw response is a 4xx, which also rules out a 5xx. */
function assertClientError(response, label) {
  assert.ok(response.status >= 400, `${label}: status ${response.status} is below 400`);
  assert.ok(response.status < 500, `${label}: status ${response.status} is a server error`);
}

async function createOrganization(extra = {}) {
  return organizations.createOrganization({ name: unique('Org'), ...extra });
}

describe('organizations', () => {
  test('create returns the WorkOS organization', async () => {
    const externalId = unique('ext');
    const metadata = { tier: 'gold', region: 'eu' };
    const name = unique('Acme');

    const organization = await organizations.createOrganization({ name, externalId, metadata });

    assert.equal(organization.object, 'organization');
    assert.match(organization.id, /^org_[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(organization.name, name);
    assert.equal(organization.externalId, externalId);
    assert.deepEqual(organization.metadata, metadata);
    assert.deepEqual(organization.domains, []);
    assert.equal(organization.allowProfilesOutsideOrganization, false);
    assert.equal(organization.stripeCustomerId, undefined);
    assert.ok(organization.createdAt instanceof Date);
    assert.ok(!Number.isNaN(organization.createdAt.getTime()));
    assert.ok(organization.updatedAt instanceof Date);
    assert.ok(!Number.isNaN(organization.updatedAt.getTime()));

    const wire = await raw('GET', `/organizations/${organization.id}`);
    assert.equal(wire.status, 200);
    assert.match(wire.headers.get('content-type'), /^application\/json/);
    assert.ok(!('stripe_customer_id' in wire.json), 'an unlinked organization has no stripe_customer_id key');
  });

  test('get and get by external_id return it', async () => {
    const externalId = unique('ext');
    const created = await createOrganization({ externalId, metadata: { plan: 'team' } });

    const fetched = await organizations.getOrganization(created.id);
    assert.deepEqual(fetched, created);

    const byExternalId = await organizations.getOrganizationByExternalId(externalId);
    assert.deepEqual(byExternalId, created);
  });

  test('update name keeps the other fields', async () => {
    const externalId = unique('ext');
    const metadata = { seats: '10' };
    const created = await createOrganization({ externalId, metadata });
    const name = unique('Renamed');

    const updated = await organizations.updateOrganization({ organization: created.id, name });

    assert.equal(updated.id, created.id);
    assert.equal(updated.name, name);
    assert.equal(updated.externalId, externalId);
    assert.deepEqual(updated.metadata, metadata);
    assert.equal(updated.createdAt.getTime(), created.createdAt.getTime());
    assert.ok(updated.updatedAt >= created.updatedAt);
    assert.deepEqual(await organizations.getOrganization(created.id), updated);
  });

  test('stripeCustomerId links and null unlinks', async () => {
    const organization = await createOrganization();
    const customerId = newCustomerId();

    const linked = await organizations.updateOrganization({
      organization: organization.id,
      stripeCustomerId: customerId,
    });
    assert.equal(linked.stripeCustomerId, customerId);
    assert.equal((await organizations.getOrganization(organization.id)).stripeCustomerId, customerId);

    const renamed = await organizations.updateOrganization({
      organization: organization.id,
      name: unique('Still linked'),
    });
    assert.equal(renamed.stripeCustomerId, customerId, 'an update without the key keeps the link');

    const unlinked = await organizations.updateOrganization({
      organization: organization.id,
      stripeCustomerId: null,
    });
    assert.equal(unlinked.stripeCustomerId, undefined);
    assert.ok(!('stripeCustomerId' in unlinked), 'the SDK sets no stripeCustomerId after unlinking');
    const fetched = await organizations.getOrganization(organization.id);
    assert.equal(fetched.stripeCustomerId, undefined);
    const wire = await raw('GET', `/organizations/${organization.id}`);
    assert.ok(!('stripe_customer_id' in wire.json), 'the unlinked response omits stripe_customer_id');

    const other = await createOrganization();
    const relinked = await organizations.updateOrganization({
      organization: other.id,
      stripeCustomerId: customerId,
    });
    assert.equal(relinked.stripeCustomerId, customerId, 'unlinking frees the customer for another organization');
  });

  test('list pages have no gaps or duplicates', async () => {
    const limit = 5;
    const created = [];
    for (let index = 0; index < 12; index += 1) {
      created.push((await createOrganization()).id);
    }

    const byOrder = {};
    for (const order of ['desc', 'asc']) {
      const pages = await listAllPages({ limit, order });
      assert.ok(pages.length >= 3, `expected at least 3 pages of ${limit}, got ${pages.length}`);
      pages.forEach((page, index) => {
        const last = index === pages.length - 1;
        if (last) {
          assert.ok(page.data.length >= 1, 'the last page is not empty');
          assert.ok(page.data.length <= limit, `the last page has ${page.data.length} items`);
          assert.equal(page.listMetadata.after ?? null, null, 'the last page has no after cursor');
        } else {
          assert.equal(page.data.length, limit, `page ${index} is full`);
          assert.equal(page.listMetadata.after, page.data.at(-1).id, `page ${index} ends at its after cursor`);
        }
        if (index === 0) {
          assert.equal(page.listMetadata.before ?? null, null, 'the first page has no before cursor');
        } else {
          assert.equal(page.listMetadata.before, page.data[0].id, `page ${index} starts at its before cursor`);
        }
      });

      const ids = pages.flatMap((page) => page.data.map((organization) => organization.id));
      assert.equal(new Set(ids).size, ids.length, `${order}: no organization appears twice`);
      for (let index = 1; index < ids.length; index += 1) {
        const sorted = order === 'asc' ? ids[index - 1] < ids[index] : ids[index - 1] > ids[index];
        assert.ok(sorted, `${order}: ${ids[index - 1]} and ${ids[index]} are out of order`);
      }
      for (const id of created) {
        assert.ok(ids.includes(id), `${order}: created organization ${id} is missing`);
      }

      // Walking back with `before` from the last page returns the same pages in the same order.
      const backward = [];
      let before = pages.at(-1).listMetadata.before;
      while (before) {
        const page = await organizations.listOrganizations({ limit, order, before });
        backward.unshift(page.data.map((organization) => organization.id));
        before = page.listMetadata.before;
        assert.ok(backward.length < pages.length, `${order}: the before walk goes past the first page`);
      }
      const forward = pages.slice(0, -1).map((page) => page.data.map((organization) => organization.id));
      assert.deepEqual(backward, forward, `${order}: before pages equal after pages`);

      byOrder[order] = ids;
    }

    assert.deepEqual([...byOrder.asc].reverse(), byOrder.desc, 'asc is desc reversed');
    if (byOrder.desc.length <= 100) {
      const single = await organizations.listOrganizations({ limit: 100 });
      assert.deepEqual(
        single.data.map((organization) => organization.id),
        byOrder.desc,
        'one page of 100 equals the pages of 5',
      );
    }
  });

  test('autoPagination returns every organization', async () => {
    // More than the default page of 10, so the SDK follows the after cursor.
    const created = [];
    for (let index = 0; index < 11; index += 1) {
      created.push((await createOrganization()).id);
    }
    const list = await organizations.listOrganizations();
    assert.ok(list.data.length <= 10, 'the default page has at most 10 organizations');

    const all = (await list.autoPagination()).map((organization) => organization.id);

    assert.equal(new Set(all).size, all.length, 'no organization appears twice');
    for (const id of created) {
      assert.ok(all.includes(id), `created organization ${id} is missing`);
    }
  });

  test('delete then get is NotFoundException', async () => {
    const externalId = unique('ext');
    const customerId = newCustomerId();
    const organization = await createOrganization({ externalId });
    await organizations.updateOrganization({ organization: organization.id, stripeCustomerId: customerId });

    await organizations.deleteOrganization(organization.id);

    assertException(await rejectionOf(organizations.getOrganization(organization.id)), NotFoundException, 404);
    assertException(
      await rejectionOf(organizations.getOrganizationByExternalId(externalId)),
      NotFoundException,
      404,
    );
    assertException(await rejectionOf(organizations.deleteOrganization(organization.id)), NotFoundException, 404);
    const listed = (await listAllPages({ limit: 100, order: 'desc' })).flatMap((page) => page.data);
    assert.ok(!listed.some((entry) => entry.id === organization.id), 'the list omits a deleted organization');

    const successor = await createOrganization({ externalId });
    assert.equal(successor.externalId, externalId, 'deleting frees the external_id');
    const relinked = await organizations.updateOrganization({
      organization: successor.id,
      stripeCustomerId: customerId,
    });
    assert.equal(relinked.stripeCustomerId, customerId, 'deleting frees the Stripe customer');
  });
});

describe('organization errors', () => {
  test('bad API key is UnauthorizedException', async () => {
    const organization = await createOrganization();
    const intruder = workosClient('sk_test_not_a_real_key');

    assertException(await rejectionOf(intruder.organizations.listOrganizations()), UnauthorizedException, 401);
    assertException(
      await rejectionOf(intruder.organizations.getOrganization(organization.id)),
      UnauthorizedException,
      401,
    );
    assertException(
      await rejectionOf(intruder.organizations.createOrganization({ name: unique('Intruder') })),
      UnauthorizedException,
      401,
    );

    const missing = await raw('GET', '/organizations', { apiKey: null });
    assert.equal(missing.status, 401);
    assert.equal(typeof missing.json?.message, 'string', 'a 401 without a key has a JSON body');
  });

  test('unknown id is NotFoundException', async () => {
    const id = unknownOrganizationId();

    assertException(await rejectionOf(organizations.getOrganization(id)), NotFoundException, 404);
    assertException(
      await rejectionOf(organizations.updateOrganization({ organization: id, name: 'Nobody' })),
      NotFoundException,
      404,
    );
    assertException(await rejectionOf(organizations.deleteOrganization(id)), NotFoundException, 404);
    assertException(
      await rejectionOf(organizations.getOrganizationByExternalId(unique('missing'))),
      NotFoundException,
      404,
    );

    const wire = await raw('GET', `/organizations/${id}`);
    assert.equal(wire.status, 404);
    assert.equal(typeof wire.json?.message, 'string');
    assert.equal(typeof wire.json?.code, 'string');

    const malformed = await raw('GET', '/organizations/not-an-id');
    assertClientError(malformed, 'GET with a malformed id');
  });

  test('duplicate external_id is ConflictException', async () => {
    const externalId = unique('ext');
    const first = await createOrganization({ externalId });

    const onCreate = await rejectionOf(createOrganization({ externalId }));
    assertException(onCreate, ConflictException, 409);
    assert.ok(onCreate.message.includes(externalId), `message names the external_id: ${onCreate.message}`);

    const second = await createOrganization();
    const onUpdate = await rejectionOf(organizations.updateOrganization({ organization: second.id, externalId }));
    assertException(onUpdate, ConflictException, 409);

    assert.equal((await organizations.getOrganizationByExternalId(externalId)).id, first.id);
    assert.equal((await organizations.getOrganization(second.id)).externalId, null);
  });

  test('customer linked elsewhere is ConflictException', async () => {
    const customerId = newCustomerId();
    const owner = await createOrganization();
    const other = await createOrganization();
    await organizations.updateOrganization({ organization: owner.id, stripeCustomerId: customerId });

    const error = await rejectionOf(
      organizations.updateOrganization({ organization: other.id, stripeCustomerId: customerId }),
    );

    assertException(error, ConflictException, 409);
    assert.ok(error.message.includes(customerId), `message names the customer: ${error.message}`);
    assert.equal((await organizations.getOrganization(other.id)).stripeCustomerId, undefined);
    assert.equal((await organizations.getOrganization(owner.id)).stripeCustomerId, customerId);
  });

  test('invalid fields are UnprocessableEntityException', async () => {
    const manyKeys = Object.fromEntries(Array.from({ length: 51 }, (_, index) => [`key${index}`, 'v']));
    // Each case: SDK options, the same body on the wire, and the field the 422 must name.
    const fieldCases = [
      { label: 'empty name', options: { name: '' }, wire: { name: '' }, field: 'name' },
      { label: 'blank name', options: { name: '   ' }, wire: { name: '   ' }, field: 'name' },
      { label: '256-char name', options: { name: 'n'.repeat(256) }, wire: { name: 'n'.repeat(256) }, field: 'name' },
      {
        label: '129-char external_id',
        options: { externalId: 'e'.repeat(129) },
        wire: { external_id: 'e'.repeat(129) },
        field: 'external_id',
      },
      { label: '51 metadata keys', options: { metadata: manyKeys }, wire: { metadata: manyKeys }, field: 'metadata' },
      {
        label: '41-char metadata key',
        options: { metadata: { ['k'.repeat(41)]: 'v' } },
        wire: { metadata: { ['k'.repeat(41)]: 'v' } },
        field: 'metadata',
      },
      {
        label: '601-char metadata value',
        options: { metadata: { note: 'v'.repeat(601) } },
        wire: { metadata: { note: 'v'.repeat(601) } },
        field: 'metadata',
      },
    ];
    const customerCases = ['acct_1', '', 'cus_', 'cus_has space', 'cus_dash-ed'].map((value) => ({
      label: `stripeCustomerId '${value}'`,
      options: { stripeCustomerId: value },
      wire: { stripe_customer_id: value },
      field: 'stripe_customer_id',
    }));

    const target = await createOrganization({ externalId: unique('ext'), metadata: { keep: 'me' } });

    for (const { label, options, wire, field } of fieldCases) {
      const onCreate = await rejectionOf(organizations.createOrganization({ name: unique('Valid'), ...options }));
      assertException(onCreate, UnprocessableEntityException, 422);
      assert.ok(onCreate.message.includes(field), `create with ${label}: message names ${field}: ${onCreate.message}`);

      const createBody = await raw('POST', '/organizations', { body: JSON.stringify({ name: 'Valid', ...wire }) });
      assert.equal(createBody.status, 422, `create with ${label}`);
      assert.ok(
        createBody.json?.errors?.[0]?.field?.startsWith(field),
        `create with ${label}: errors[0].field names ${field}: ${createBody.text}`,
      );
    }

    for (const { label, options, wire, field } of [...fieldCases, ...customerCases]) {
      const onUpdate = await rejectionOf(organizations.updateOrganization({ organization: target.id, ...options }));
      assertException(onUpdate, UnprocessableEntityException, 422);
      assert.ok(onUpdate.message.includes(field), `update with ${label}: message names ${field}: ${onUpdate.message}`);

      const updateBody = await raw('PUT', `/organizations/${target.id}`, { body: JSON.stringify(wire) });
      assert.equal(updateBody.status, 422, `update with ${label}`);
      assert.ok(
        updateBody.json?.errors?.[0]?.field?.startsWith(field),
        `update with ${label}: errors[0].field names ${field}: ${updateBody.text}`,
      );
    }

    assert.deepEqual(await organizations.getOrganization(target.id), target, 'rejected updates change nothing');
  });

  test('values at the limits are accepted', async () => {
    const metadata = Object.fromEntries(Array.from({ length: 50 }, (_, index) => [`key${index}`, 'v']));
    const wideMetadata = { ['k'.repeat(40)]: 'v'.repeat(600) };

    const organization = await organizations.createOrganization({
      name: 'n'.repeat(255),
      externalId: unique('e').padEnd(128, 'e'),
      metadata,
    });
    assert.equal(organization.name.length, 255);
    assert.equal(organization.externalId.length, 128);
    assert.equal(Object.keys(organization.metadata).length, 50);

    const updated = await organizations.updateOrganization({ organization: organization.id, metadata: wideMetadata });
    assert.deepEqual(updated.metadata, wideMetadata);
  });

  test('malformed JSON is a 400 with a JSON body', async () => {
    const target = await createOrganization();
    const requests = [
      ['POST', '/organizations', '{"name":'],
      ['POST', '/organizations', ''],
      ['POST', '/organizations', 'name=Acme'],
      ['PUT', `/organizations/${target.id}`, '{"name": "Acme",}'],
    ];
    for (const [method, path, body] of requests) {
      const response = await raw(method, path, { body });
      assert.equal(response.status, 400, `${method} ${path} with ${JSON.stringify(body)}: ${response.text}`);
      assert.match(response.headers.get('content-type'), /^application\/json/);
      assert.equal(typeof response.json?.message, 'string', `${method} with ${JSON.stringify(body)} has a message`);
      assert.equal(typeof response.json?.code, 'string', `${method} with ${JSON.stringify(body)} has a code`);
    }
  });

  test('wrong JSON types are a 4xx naming the field', async () => {
    const target = await createOrganization();
    // Each case: method, path, body, and the field errors[0].field must name.
    const cases = [
      ['POST', '/organizations', { name: 5 }, 'name'],
      ['POST', '/organizations', { name: ['Acme'] }, 'name'],
      ['POST', '/organizations', {}, 'name'],
      ['POST', '/organizations', { name: 'Acme', external_id: 42 }, 'external_id'],
      ['POST', '/organizations', { name: 'Acme', metadata: ['a'] }, 'metadata'],
      ['POST', '/organizations', { name: 'Acme', metadata: { plan: 1 } }, 'metadata.plan'],
      ['POST', '/organizations', { name: 'Acme', domain_data: 'example.com' }, 'domain_data'],
      ['POST', '/organizations', [], 'body'],
      ['POST', '/organizations', 'Acme', 'body'],
      ['PUT', `/organizations/${target.id}`, { name: 5 }, 'name'],
      ['PUT', `/organizations/${target.id}`, { stripe_customer_id: 5 }, 'stripe_customer_id'],
      ['PUT', `/organizations/${target.id}`, { stripe_customer_id: { id: 'cus_1' } }, 'stripe_customer_id'],
      ['PUT', `/organizations/${target.id}`, { metadata: 'plan' }, 'metadata'],
      ['PUT', `/organizations/${target.id}`, { external_id: true }, 'external_id'],
      ['PUT', `/organizations/${target.id}`, null, 'body'],
    ];
    for (const [method, path, body, field] of cases) {
      const label = `${method} ${JSON.stringify(body)}`;
      const response = await raw(method, path, { body: JSON.stringify(body) });
      assertClientError(response, label);
      assert.match(response.headers.get('content-type'), /^application\/json/, `${label}: JSON body`);
      assert.equal(response.json?.errors?.[0]?.field, field, `${label}: ${response.text}`);
    }
    assert.deepEqual(await organizations.getOrganization(target.id), target, 'rejected updates change nothing');
  });

  test('every response has X-Request-ID', async () => {
    const created = await raw('POST', '/organizations', {
      body: JSON.stringify({ name: unique('Headers'), external_id: unique('ext') }),
    });
    const id = created.json.id;
    const externalId = created.json.external_id;
    const responses = [
      ['create', created],
      ['get', await raw('GET', `/organizations/${id}`)],
      ['get by external_id', await raw('GET', `/organizations/external_id/${externalId}`)],
      ['list', await raw('GET', '/organizations?limit=2&order=asc')],
      ['update', await raw('PUT', `/organizations/${id}`, { body: JSON.stringify({ name: 'Renamed' }) })],
      ['conflict', await raw('POST', '/organizations', { body: JSON.stringify({ name: 'Dup', external_id: externalId }) })],
      ['validation', await raw('POST', '/organizations', { body: JSON.stringify({ name: '' }) })],
      ['bad query', await raw('GET', '/organizations?limit=0')],
      ['malformed JSON', await raw('POST', '/organizations', { body: '{' })],
      ['oversized body', await raw('POST', '/organizations', { body: JSON.stringify({ name: 'x'.repeat(70_000) }) })],
      ['bad key', await raw('GET', '/organizations', { apiKey: 'sk_test_wrong' })],
      ['no key', await raw('GET', `/organizations/${id}`, { apiKey: null })],
      ['unknown organization', await raw('GET', `/organizations/${unknownOrganizationId()}`)],
      ['unknown path', await raw('GET', '/no/such/path')],
      ['wrong method', await raw('PATCH', '/organizations')],
      ['delete', await raw('DELETE', `/organizations/${id}`)],
    ];

    const seen = new Set();
    for (const [label, response] of responses) {
      const requestId = response.headers.get('x-request-id');
      assert.ok(requestId, `${label} (${response.status}) has X-Request-ID`);
      assert.ok(!seen.has(requestId), `${label}: request IDs are distinct`);
      seen.add(requestId);
      assert.ok(response.status < 500, `${label}: status ${response.status} is not a 5xx`);
      if (response.text !== '') {
        assert.match(response.headers.get('content-type') ?? '', /^application\/json/, `${label}: JSON body`);
        assert.notEqual(response.json, undefined, `${label}: the body parses as JSON`);
      }
    }
    assert.equal(responses.find(([label]) => label === 'create')[1].status, 201);
    assert.equal(responses.find(([label]) => label === 'delete')[1].status, 204);
  });

  test('another environment gets 404 for the organization', async () => {
    const otherEnvironment = workosClient(API_KEY_2).organizations;
    const externalId = unique('ext');
    const customerId = newCustomerId();
    const organization = await createOrganization({ externalId });
    const linked = await organizations.updateOrganization({
      organization: organization.id,
      stripeCustomerId: customerId,
    });

    assertException(await rejectionOf(otherEnvironment.getOrganization(organization.id)), NotFoundException, 404);
    assertException(
      await rejectionOf(otherEnvironment.getOrganizationByExternalId(externalId)),
      NotFoundException,
      404,
    );
    assertException(
      await rejectionOf(otherEnvironment.updateOrganization({ organization: organization.id, name: 'Taken over' })),
      NotFoundException,
      404,
    );
    assertException(await rejectionOf(otherEnvironment.deleteOrganization(organization.id)), NotFoundException, 404);
    const listed = (await otherEnvironment.listOrganizations({ limit: 100 })).data;
    assert.ok(!listed.some((entry) => entry.id === organization.id), 'the other environment does not list it');

    const wire = await raw('GET', `/organizations/${organization.id}`, { apiKey: API_KEY_2 });
    assert.equal(wire.status, 404);
    assert.equal(typeof wire.json?.message, 'string');

    assert.deepEqual(await organizations.getOrganization(organization.id), linked, 'the organization is unchanged');

    // external_id and the Stripe customer link are unique within an environment, not across them.
    const twin = await otherEnvironment.createOrganization({ name: unique('Twin'), externalId });
    assert.equal(twin.externalId, externalId);
    const twinLinked = await otherEnvironment.updateOrganization({ organization: twin.id, stripeCustomerId: customerId });
    assert.equal(twinLinked.stripeCustomerId, customerId);
    assert.equal((await organizations.getOrganizationByExternalId(externalId)).id, organization.id);
  });

  test('concurrent links of one customer: exactly one wins', async () => {
    for (let round = 1; round <= 10; round += 1) {
      const [first, second] = await Promise.all([createOrganization(), createOrganization()]);
      const customerId = newCustomerId();

      const results = await Promise.allSettled([
        organizations.updateOrganization({ organization: first.id, stripeCustomerId: customerId }),
        organizations.updateOrganization({ organization: second.id, stripeCustomerId: customerId }),
      ]);

      const fulfilled = results.filter((result) => result.status === 'fulfilled');
      const rejected = results.filter((result) => result.status === 'rejected');
      assert.equal(fulfilled.length, 1, `round ${round}: exactly one link succeeds`);
      assert.equal(rejected.length, 1, `round ${round}: exactly one link fails`);
      assertException(rejected[0].reason, ConflictException, 409);
      assert.ok(rejected[0].reason.message.includes(customerId), `round ${round}: ${rejected[0].reason.message}`);

      const winnerId = fulfilled[0].value.id;
      const loserId = winnerId === first.id ? second.id : first.id;
      assert.equal(fulfilled[0].value.stripeCustomerId, customerId);
      assert.equal((await organizations.getOrganization(winnerId)).stripeCustomerId, customerId, `round ${round}: winner`);
      assert.equal((await organizations.getOrganization(loserId)).stripeCustomerId, undefined, `round ${round}: loser`);
    }
  });
});

/** Lists every page in `order` by following the after cursors from the first page. */
async function listAllPages({ limit, order }) {
  const pages = [];
  let after;
  for (;;) {
    const options = after ? { limit, order, after } : { limit, order };
    const page = await organizations.listOrganizations(options);
    pages.push(page);
    after = page.listMetadata.after;
    if (!after) {
      return pages;
    }
    assert.ok(pages.length < 10_000, 'pagination ends');
  }
}
