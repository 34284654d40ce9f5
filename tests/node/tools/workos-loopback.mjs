// Helpers for the tool scripts. They read the JSON request from stdin and run the official
// @workos-inc/node client against a throwaway HTTP server on 127.0.0.1, which serves the two
// endpoints the scripts need: POST /user_management/authenticate and GET /sso/jwks/:clientId.
import { createServer } from 'node:http';
import { WorkOS } from '@workos-inc/node';

export const CLIENT_ID = 'client_tools';
const API_KEY = 'sk_test_tools';
// Stops a hung script; the Rust tests spawn these and must not wait forever.
const WATCHDOG_MS = 30_000;

/** Reads stdin to the end and parses it as JSON. */
export async function readJsonStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** Prints `value` as one line of JSON, the scripts' only output on stdout. */
export function printJson(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/**
 * Starts the loopback server, calls `use(workos)` with a client pointed at it, then stops the
 * server. `authenticateResponse` is the snake_case body returned by the authenticate endpoint,
 * and `jwks` the document returned by the JWKS endpoint; either may be omitted (404).
 */
export async function withLoopbackWorkOS({ authenticateResponse, jwks }, use) {
  const watchdog = setTimeout(() => {
    process.stderr.write(`timed out after ${WATCHDOG_MS} ms\n`);
    process.exit(2);
  }, WATCHDOG_MS);
  watchdog.unref();

  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const path = new URL(request.url, 'http://127.0.0.1').pathname;
      const route = `${request.method} ${path}`;
      let status = 404;
      let body = { message: `No route for ${route}`, code: 'not_found' };
      if (route === 'POST /user_management/authenticate' && authenticateResponse) {
        status = 200;
        body = authenticateResponse;
      } else if (route === `GET /sso/jwks/${CLIENT_ID}` && jwks) {
        status = 200;
        body = jwks;
      }
      response.writeHead(status, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify(body));
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });

  try {
    const workos = new WorkOS(API_KEY, {
      clientId: CLIENT_ID,
      apiHostname: '127.0.0.1',
      port: server.address().port,
      https: false,
      maxRetries: 0,
    });
    return await use(workos);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
