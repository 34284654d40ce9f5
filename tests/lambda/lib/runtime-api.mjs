// A Lambda Runtime API emulator on 127.0.0.1, enough for a custom runtime such as lambda_runtime:
// `GET /2018-06-01/runtime/invocation/next` hands out queued events with the headers Lambda sends,
// `POST .../invocation/{id}/response` and `.../error` complete them, and `POST .../init/error`
// records an init failure. One process polls it at a time, as in Lambda.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const PREFIX = '/2018-06-01/runtime';

/** The outcome of one invocation: the function's response payload or its reported error. */
export class InvocationResult {
  constructor(kind, body) {
    /** `response` or `error`. */
    this.kind = kind;
    /** The raw payload the runtime posted. */
    this.body = body;
  }

  /** Parses the payload as JSON. */
  json() {
    return JSON.parse(this.body.toString('utf8'));
  }
}

export class RuntimeApi {
  constructor({ functionName = 'function', region = 'us-east-1', accountId = '123456789012' } = {}) {
    this.functionArn = `arn:aws:lambda:${region}:${accountId}:function:${functionName}`;
    this.queue = [];
    this.parkedPolls = [];
    this.pending = new Map();
    this.initError = null;
    /** `performance.now()` of the first `GET .../next`, which ends the function's init. */
    this.firstPollAt = null;
    this.pollCount = 0;
    this.server = http.createServer((request, response) => {
      this.handle(request, response).catch((error) => {
        response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ errorMessage: String(error) }));
      });
    });
    // The runtime's long poll may wait minutes between tests.
    this.server.requestTimeout = 0;
    this.server.keepAliveTimeout = 600_000;
  }

  /** Starts listening on a free loopback port. */
  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    return this;
  }

  /** The value of `AWS_LAMBDA_RUNTIME_API`: host and port. */
  get address() {
    const { port } = this.server.address();
    return `127.0.0.1:${port}`;
  }

  /**
   * Queues an event and waits for the function's response. Rejects after `timeoutMs`, or at once
   * when the function reported an init error.
   */
  invoke(event, { timeoutMs = 30_000 } = {}) {
    if (this.initError) {
      return Promise.reject(new Error(`the function failed at init: ${this.initError}`));
    }
    const requestId = randomUUID();
    const payload = Buffer.from(typeof event === 'string' ? event : JSON.stringify(event));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new Error(`invocation ${requestId} got no response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(requestId, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.queue.push({ requestId, payload, deadline: Date.now() + timeoutMs });
      this.dispatch();
    });
  }

  /** Waits until the function polls for its first event, or rejects at an init error or timeout. */
  waitForFirstPoll(timeoutMs = 30_000) {
    if (this.firstPollAt !== null) return Promise.resolve(this.firstPollAt);
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const check = () => {
        if (this.firstPollAt !== null) return resolve(this.firstPollAt);
        if (this.initError) return reject(new Error(`the function failed at init: ${this.initError}`));
        if (Date.now() - started > timeoutMs) {
          return reject(new Error(`the function did not poll for an event within ${timeoutMs} ms`));
        }
        setTimeout(check, 2);
      };
      check();
    });
  }

  dispatch() {
    while (this.queue.length > 0 && this.parkedPolls.length > 0) {
      const response = this.parkedPolls.shift();
      if (response.destroyed || response.writableEnded) continue;
      const next = this.queue.shift();
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': next.payload.length,
        'lambda-runtime-aws-request-id': next.requestId,
        'lambda-runtime-deadline-ms': String(next.deadline),
        'lambda-runtime-invoked-function-arn': this.functionArn,
        'lambda-runtime-trace-id': `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomUUID()
          .replaceAll('-', '')
          .slice(0, 24)};Parent=${randomUUID().replaceAll('-', '').slice(0, 16)};Sampled=0`,
      });
      response.end(next.payload);
    }
  }

  async handle(request, response) {
    const url = new URL(request.url, 'http://runtime');
    const body = await readBody(request);

    if (request.method === 'GET' && url.pathname === `${PREFIX}/invocation/next`) {
      this.pollCount += 1;
      if (this.firstPollAt === null) this.firstPollAt = performance.now();
      this.parkedPolls.push(response);
      this.dispatch();
      return;
    }

    const completion = url.pathname.match(/^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/);
    if (request.method === 'POST' && completion) {
      const [, requestId, kind] = completion;
      const waiter = this.pending.get(requestId);
      if (!waiter) {
        response.writeHead(400, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ errorMessage: `unknown request ID ${requestId}` }));
        return;
      }
      this.pending.delete(requestId);
      response.writeHead(202, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ status: 'OK' }));
      waiter.resolve(new InvocationResult(kind, body));
      return;
    }

    if (request.method === 'POST' && url.pathname === `${PREFIX}/init/error`) {
      this.initError = body.toString('utf8') || 'init error without a body';
      response.writeHead(202, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ status: 'OK' }));
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`the function failed at init: ${this.initError}`));
      }
      this.pending.clear();
      return;
    }

    response.writeHead(404, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ errorMessage: `no route for ${request.method} ${url.pathname}` }));
  }

  /** Stops listening and ends parked polls; pending invocations are rejected. */
  async close() {
    for (const waiter of this.pending.values()) {
      waiter.reject(new Error('the runtime API closed before the function responded'));
    }
    this.pending.clear();
    for (const response of this.parkedPolls) response.destroy();
    this.parkedPolls = [];
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
