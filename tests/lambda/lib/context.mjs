// What every Lambda test file shares: the settings from the environment, the template summary,
// the DynamoDB recording proxy, environments created with the admin CLI, and starting a function
// binary with exactly the variables template.yaml gives it.
//
// Variables (scripts/deploy-checks.sh sets them all):
//   LAMBDA_BIN_DIR           folder with the function binaries
//   LAMBDA_TOOLS_DIR         folder with `admin` and `stripe-emulator` (default: LAMBDA_BIN_DIR)
//   LAMBDA_TEMPLATE_SUMMARY  JSON file written by tests/lambda/template_summary.py
//   DYNAMODB_ENDPOINT        DynamoDB Local, with the table TABLE_NAME created
//   TABLE_NAME

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

import { DynamoDbProxy } from './dynamodb-proxy.mjs';
import { TEST_SECRETS, lambdaEnvironment, startFunction } from './function-process.mjs';

const execFileAsync = promisify(execFile);

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set; run the Lambda tests through scripts/deploy-checks.sh`);
  }
  return value;
}

export const settings = {
  binDir: required('LAMBDA_BIN_DIR'),
  toolsDir: process.env.LAMBDA_TOOLS_DIR || required('LAMBDA_BIN_DIR'),
  templateSummary: JSON.parse(readFileSync(required('LAMBDA_TEMPLATE_SUMMARY'), 'utf8')),
  dynamodbEndpoint: required('DYNAMODB_ENDPOINT'),
  tableName: required('TABLE_NAME'),
};

/** The template's summary of the function built from `binary`. */
export function templateFunction(binary) {
  const entry = Object.entries(settings.templateSummary.functions).find(([, fn]) => fn.binary === binary);
  assert.ok(entry, `template.yaml has no function whose Metadata.BuildProperties.Binary is ${binary}`);
  const [logicalId, fn] = entry;
  return { logicalId, ...fn };
}

/** Environment of the admin CLI and the emulator: loopback only, no metadata service. */
function toolEnvironment(extra = {}) {
  return {
    PATH: process.env.PATH,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    TABLE_NAME: settings.tableName,
    RUST_LOG: 'warn',
    // The admin CLI encrypts a new environment's signing key with the key the functions get.
    KEY_ENCRYPTION_KEY: TEST_SECRETS.KEY_ENCRYPTION_KEY,
    ...extra,
  };
}

/** Creates an environment with the admin CLI and returns `{ api_key, client_id }`. */
export async function createEnvironment(name, mode = 'test') {
  const { stdout } = await execFileAsync(
    join(settings.toolsDir, 'admin'),
    ['--dynamodb-endpoint', settings.dynamodbEndpoint, 'create-environment', '--name', name, '--mode', mode],
    { env: toolEnvironment() },
  );
  return JSON.parse(stdout);
}

/**
 * Starts the Stripe emulator binary on a free loopback port with the test secret key and client
 * ID, and returns `{ url, stop }`.
 */
export async function startStripeEmulator() {
  const child = spawn(join(settings.toolsDir, 'stripe-emulator'), ['--port', '0'], {
    env: toolEnvironment({
      STRIPE_EMULATOR_PLATFORM_SECRET_KEY: TEST_SECRETS.STRIPE_SECRET_KEY,
      STRIPE_EMULATOR_CLIENT_ID: 'ca_emulator',
    }),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`stripe-emulator exited with ${code} before printing its URL`)));
  });
  return {
    url,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    },
  };
}

/** Starts the recording proxy in front of DynamoDB Local. */
export function startDynamoDbProxy() {
  return new DynamoDbProxy(settings.dynamodbEndpoint).start();
}

/**
 * Starts the function built from `binary` with the variables template.yaml gives it. `overrides`
 * adds or replaces variables, such as DYNAMODB_ENDPOINT and the Stripe base URLs.
 */
export async function startLambda(binary, { overrides = {}, wrapper = [] } = {}) {
  const fn = templateFunction(binary);
  return startFunction({
    name: binary,
    binary: join(settings.binDir, binary),
    wrapper,
    environment: (runtimeApi) =>
      lambdaEnvironment({
        functionName: binary,
        templateVariables: fn.variables,
        runtimeApi,
        tableName: settings.tableName,
        overrides,
      }),
  });
}

/**
 * Checks that every DynamoDB action the proxy recorded is allowed to the function by
 * template.yaml, and that every request named the function's table.
 */
export function assertTableAccessAllowed(proxy, binary, context) {
  const fn = templateFunction(binary);
  const used = proxy.actions();
  const denied = used.filter((action) => !fn.dynamodb_actions.includes(action));
  assert.deepEqual(denied, [], `${binary} called DynamoDB actions that template.yaml does not allow it`);
  assert.deepEqual(proxy.tables(), proxy.requests.length > 0 ? [settings.tableName] : []);
  const unused = fn.dynamodb_actions.filter((action) => !used.includes(action));
  context?.diagnostic(`${binary} used ${used.join(', ')}; allowed but not used here: ${unused.join(', ') || 'none'}`);
}

/** Checks that no secret test value appears in anything the function printed. */
export function assertNoSecretInLogs(fn) {
  const logs = fn.logs();
  for (const [name, value] of Object.entries(TEST_SECRETS)) {
    for (const part of value.split(',')) {
      assert.ok(!logs.includes(part), `${fn.name} printed the value of ${name}`);
    }
  }
}
