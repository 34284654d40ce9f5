// A recording HTTP proxy in front of DynamoDB Local, on 127.0.0.1. It forwards every request
// unchanged and records, per request, the IAM actions it needs and the table it names, so the
// tests can compare what a function really calls with what template.yaml allows. It also counts
// TCP connections, which shows when a function first reaches for DynamoDB.

import http from 'node:http';

/** The IAM action of each item kind inside `TransactWriteItems`. */
const TRANSACT_WRITE_ACTIONS = {
  Put: 'dynamodb:PutItem',
  Update: 'dynamodb:UpdateItem',
  Delete: 'dynamodb:DeleteItem',
  ConditionCheck: 'dynamodb:ConditionCheckItem',
};

/**
 * Returns the IAM actions and table names of one DynamoDB request. `TransactWriteItems` and
 * `TransactGetItems` have no IAM action of their own: IAM checks each item's action instead.
 */
export function actionsOfRequest(operation, body) {
  const actions = new Set();
  const tables = new Set();
  if (body?.TableName) tables.add(body.TableName);
  switch (operation) {
    case 'TransactWriteItems':
      for (const item of body?.TransactItems ?? []) {
        for (const [kind, action] of Object.entries(TRANSACT_WRITE_ACTIONS)) {
          if (item[kind]) {
            actions.add(action);
            tables.add(item[kind].TableName);
          }
        }
      }
      break;
    case 'TransactGetItems':
      for (const item of body?.TransactItems ?? []) {
        actions.add('dynamodb:GetItem');
        tables.add(item.Get?.TableName);
      }
      break;
    case 'BatchGetItem':
    case 'BatchWriteItem':
      actions.add(`dynamodb:${operation}`);
      for (const table of Object.keys(body?.RequestItems ?? {})) tables.add(table);
      break;
    default:
      actions.add(`dynamodb:${operation}`);
  }
  tables.delete(undefined);
  return { actions: [...actions], tables: [...tables] };
}

export class DynamoDbProxy {
  constructor(upstream) {
    this.upstream = new URL(upstream);
    /** Every request seen: `{ operation, actions, tables, at }`. */
    this.requests = [];
    this.connections = 0;
    this.server = http.createServer((request, response) => this.forward(request, response));
    this.server.on('connection', () => {
      this.connections += 1;
    });
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    return this;
  }

  /** The endpoint to give a function as `DYNAMODB_ENDPOINT`. */
  get endpoint() {
    return `http://127.0.0.1:${this.server.address().port}`;
  }

  /** Forgets what was recorded so far. */
  reset() {
    this.requests = [];
    this.connections = 0;
  }

  /** Every IAM action recorded since the last reset, sorted. */
  actions() {
    return [...new Set(this.requests.flatMap((request) => request.actions))].sort();
  }

  /** Every table name recorded since the last reset, sorted. */
  tables() {
    return [...new Set(this.requests.flatMap((request) => request.tables))].sort();
  }

  async forward(request, response) {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const body = Buffer.concat(chunks);

    const target = request.headers['x-amz-target'] ?? '';
    const operation = target.split('.').pop();
    let parsed = null;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      // Recorded with no table; DynamoDB Local returns its own error for the body.
    }
    this.requests.push({ operation, ...actionsOfRequest(operation, parsed), at: Date.now() });

    const headers = { ...request.headers, host: this.upstream.host };
    const upstreamRequest = http.request(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: request.method,
        path: request.url,
        headers,
      },
      (upstreamResponse) => {
        response.writeHead(upstreamResponse.statusCode, upstreamResponse.headers);
        upstreamResponse.pipe(response);
      },
    );
    upstreamRequest.on('error', (error) => {
      response.writeHead(502, { 'content-type': 'text/plain' });
      response.end(`the proxy could not reach DynamoDB Local: ${error.message}`);
    });
    upstreamRequest.end(body);
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A loopback listener that counts connections and answers every request with 503. */
export class CountingListener {
  constructor() {
    this.connections = 0;
    this.server = http.createServer((request, response) => {
      request.resume();
      response.writeHead(503, { 'content-type': 'application/json' });
      response.end('{"error":{"type":"api_error","message":"counting listener"}}');
    });
    this.server.on('connection', () => {
      this.connections += 1;
    });
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    return this;
  }

  get url() {
    return `http://127.0.0.1:${this.server.address().port}/`;
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
