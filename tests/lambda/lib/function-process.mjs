// Starts a function's compiled binary as Lambda would: a fresh process whose only contact with the
// outside is the Runtime API at AWS_LAMBDA_RUNTIME_API and the environment variables Lambda and
// template.yaml give it. The process does not inherit this process's environment.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

import { RuntimeApi } from './runtime-api.mjs';

/** Secret values the tests give the functions. No function may ever print one of them. */
export const TEST_SECRETS = {
  STRIPE_SECRET_KEY: 'sk_test_emulator',
  STRIPE_WEBHOOK_SECRETS: 'whsec_lambdaTestOld,whsec_lambdaTestCurrent',
  // base64 of the 32 bytes 0x01..0x20.
  KEY_ENCRYPTION_KEY: 'AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=',
  COOKIE_PASSWORD: 'lambda-test-cookie-password-0123456789abcdef',
};

/** Test values of the template's plain parameters, by the variable that carries them. */
export const TEST_PARAMETERS = {
  STRIPE_CLIENT_ID: 'ca_emulator',
  STRIPE_REDIRECT_URI: 'https://api.example.test/stripe/oauth/callback',
  ACCESS_TOKEN_TTL_SECONDS: '300',
  TOKEN_ISSUER: 'https://api.workos.com',
  ENTITLEMENTS_PATH: '/api/entitlements',
  RUST_LOG: 'INFO',
  AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH: 'true',
  SECRETS_REVISION: '1',
  MALLOC_MMAP_THRESHOLD_: '131072',
};

/**
 * Builds the environment of a function: what Lambda itself sets, then each variable that
 * template.yaml gives this function (with the test value of its secret or parameter), then
 * `overrides` (endpoints of DynamoDB Local and the Stripe emulator).
 */
export function lambdaEnvironment({ functionName, templateVariables, runtimeApi, tableName, overrides = {} }) {
  const environment = {
    AWS_LAMBDA_RUNTIME_API: runtimeApi,
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/12/04/[$LATEST]00000000000000000000000000000000',
    AWS_LAMBDA_LOG_FORMAT: 'JSON',
    AWS_LAMBDA_LOG_LEVEL: 'INFO',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_EXECUTION_ENV: 'AWS_Lambda_rust',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDLAMBDATEST',
    AWS_SECRET_ACCESS_KEY: 'lambda-test-secret-access-key',
    AWS_SESSION_TOKEN: 'lambda-test-session-token',
    // Keeps the AWS SDK away from an instance metadata service, whatever else is configured.
    AWS_EC2_METADATA_DISABLED: 'true',
    _HANDLER: 'bootstrap',
    LAMBDA_TASK_ROOT: '/var/task',
    TZ: ':UTC',
  };
  for (const name of templateVariables) {
    if (name === 'TABLE_NAME') {
      environment.TABLE_NAME = tableName;
    } else if (name in TEST_SECRETS) {
      environment[name] = TEST_SECRETS[name];
    } else if (name in TEST_PARAMETERS) {
      environment[name] = TEST_PARAMETERS[name];
    } else {
      throw new Error(`template.yaml sets ${name}, which the Lambda tests have no test value for`);
    }
  }
  return { ...environment, ...overrides };
}

export class FunctionProcess {
  constructor({ name, binary, runtime, child, spawnedAt, wrapped }) {
    this.name = name;
    this.wrapped = wrapped;
    this.binary = binary;
    this.runtime = runtime;
    this.child = child;
    this.spawnedAt = spawnedAt;
    this.output = [];
    this.exit = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (text) => this.output.push(text));
    }
  }

  /** Everything the process printed so far, stdout and stderr interleaved. */
  logs() {
    return this.output.join('');
  }

  /** Milliseconds from spawning the process to its first poll for an event: the init duration. */
  async initMs() {
    const polledAt = await this.runtime.waitForFirstPoll();
    return polledAt - this.spawnedAt;
  }

  invoke(event, options) {
    return this.runtime.invoke(event, options);
  }

  /** Peak resident set size so far, in KiB (`VmHWM` of /proc/PID/status). */
  peakRssKib() {
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const match = status.match(/^VmHWM:\s+(\d+) kB$/m);
    if (!match) throw new Error(`no VmHWM line in /proc/${this.child.pid}/status`);
    return Number(match[1]);
  }

  /**
   * Stops the process with SIGTERM (SIGKILL after 5 s) and closes its Runtime API. Under a wrapper
   * such as strace, the function is the wrapper's child: it gets the SIGTERM, and the wrapper
   * exits with it.
   */
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const targets = this.wrapped ? childPids(this.child.pid) : [];
      if (targets.length > 0) {
        for (const pid of targets) process.kill(pid, 'SIGTERM');
      } else {
        this.child.kill('SIGTERM');
      }
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exit;
      clearTimeout(timer);
    }
    await this.runtime.close();
  }
}

/** Returns the PIDs of the direct children of process `pid`, read from /proc. */
function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter((text) => text.trim().length > 0)
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * Starts `binary` against a new Runtime API emulator. `environment` receives the emulator's
 * address and returns the process environment. `wrapper`, if given, is a command and arguments
 * that run the binary (such as strace).
 */
export async function startFunction({ name, binary, environment, wrapper = [] }) {
  const runtime = await new RuntimeApi({ functionName: name }).start();
  const env = environment(runtime.address);
  const [command, ...args] = wrapper.length > 0 ? [...wrapper, binary] : [binary];
  const spawnedAt = performance.now();
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return new FunctionProcess({ name, binary, runtime, child, spawnedAt, wrapped: wrapper.length > 0 });
}
