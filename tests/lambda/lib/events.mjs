// Lambda event payloads for one HTTP request, in the shapes of the four integrations that invoke
// an HTTP function, built on the sample events in ../fixtures/events, and readers of the responses
// each integration expects back.

import { readFileSync } from 'node:fs';

const FIXTURES = new URL('../fixtures/events/', import.meta.url);

/** Every event shape, by the name of its fixture file. */
export const SHAPES = ['apigw-rest-v1', 'apigw-http-v2', 'function-url', 'alb', 'alb-multi-value'];

function fixture(shape) {
  return JSON.parse(readFileSync(new URL(`${shape}.json`, FIXTURES), 'utf8'));
}

/**
 * Splits a raw query string (as the client sent it, percent-encoded) into `[key, value]` pairs,
 * still encoded.
 */
function rawPairs(rawQuery) {
  if (!rawQuery) return [];
  return rawQuery
    .split('&')
    .filter((part) => part.length > 0)
    .map((part) => {
      const equals = part.indexOf('=');
      return equals === -1 ? [part, ''] : [part.slice(0, equals), part.slice(equals + 1)];
    });
}

/**
 * Decodes one query component as a REST API does for `queryStringParameters`. That is form
 * decoding, so a `+` becomes a space and `%2B` becomes `+`.
 */
function decodeComponent(value) {
  return decodeURIComponent(value.replaceAll('+', ' '));
}

function groupPairs(pairs) {
  const grouped = {};
  for (const [key, value] of pairs) (grouped[key] ??= []).push(value);
  return grouped;
}

function lastValues(grouped) {
  return Object.fromEntries(Object.entries(grouped).map(([key, values]) => [key, values.at(-1)]));
}

/** Normalizes `{name: value | [values]}` into `[[name, value], ...]`, keeping the given case. */
function headerPairs(headers) {
  return Object.entries(headers ?? {}).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).map((item) => [name, String(item)]),
  );
}

/**
 * Builds the event that `shape` delivers for one request:
 *
 * - `method`, `path` (without a stage), `query` (the raw query string, percent-encoded, no `?`);
 * - `headers`: `{name: value | [values]}`;
 * - `cookies`: `['name=value', ...]`, sent as the integration sends cookies;
 * - `body`: a string or Buffer, `base64`: whether the integration encodes it;
 * - `stage`: the REST API stage (default `Prod`), or for an HTTP API a named stage, which then
 *   prefixes `rawPath` as API Gateway does.
 */
export function buildEvent(shape, request) {
  const method = request.method ?? 'GET';
  const path = request.path;
  const pairs = rawPairs(request.query);
  const decoded = groupPairs(pairs.map(([key, value]) => [decodeComponent(key), decodeComponent(value)]));
  const raw = groupPairs(pairs);
  const cookies = request.cookies ?? [];
  const headers = headerPairs(request.headers);

  let body = null;
  if (request.body !== undefined && request.body !== null) {
    const bytes = Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body, 'utf8');
    body = request.base64 ? bytes.toString('base64') : bytes.toString('utf8');
  }

  const event = fixture(shape);
  switch (shape) {
    case 'apigw-rest-v1': {
      const stage = request.stage ?? 'Prod';
      const allHeaders = [...headers];
      if (cookies.length > 0) allHeaders.push(['Cookie', cookies.join('; ')]);
      for (const [name, value] of allHeaders) {
        event.headers[name] = value;
        event.multiValueHeaders[name] = [...(event.multiValueHeaders[name] ?? []), value];
      }
      // REST APIs give `headers` the last value of a repeated header.
      for (const [name, values] of Object.entries(event.multiValueHeaders)) event.headers[name] = values.at(-1);
      event.httpMethod = method;
      event.path = path;
      event.pathParameters = { proxy: path.replace(/^\//, '') };
      event.queryStringParameters = pairs.length > 0 ? lastValues(decoded) : null;
      event.multiValueQueryStringParameters = pairs.length > 0 ? decoded : null;
      event.requestContext.httpMethod = method;
      event.requestContext.stage = stage;
      event.requestContext.path = `/${stage}${path}`;
      event.body = body;
      event.isBase64Encoded = Boolean(request.base64);
      return event;
    }
    case 'apigw-http-v2':
    case 'function-url': {
      const stage = request.stage ?? '$default';
      const rawPath = stage === '$default' ? path : `/${stage}${path}`;
      const grouped = {};
      for (const [name, value] of headers) (grouped[name.toLowerCase()] ??= []).push(value);
      for (const [name, values] of Object.entries(grouped)) event.headers[name] = values.join(',');
      if (cookies.length > 0) {
        event.cookies = cookies;
        // Function URLs also pass the original header; HTTP APIs pass only the array.
        if (shape === 'function-url') event.headers.cookie = cookies.join('; ');
      }
      event.rawPath = rawPath;
      event.rawQueryString = request.query ?? '';
      if (pairs.length > 0) {
        event.queryStringParameters = Object.fromEntries(
          Object.entries(decoded).map(([key, values]) => [key, values.join(',')]),
        );
      }
      if (body !== null) {
        event.body = body;
        event.headers['content-length'] = String(Buffer.byteLength(request.body));
      } else {
        delete event.body;
      }
      event.isBase64Encoded = Boolean(request.base64);
      event.requestContext.http.method = method;
      event.requestContext.http.path = rawPath;
      event.requestContext.stage = stage;
      if (shape === 'apigw-http-v2') {
        event.routeKey = `${method} ${path}`;
        event.requestContext.routeKey = event.routeKey;
        event.pathParameters = { proxy: path.replace(/^\//, '') };
      }
      return event;
    }
    case 'alb':
    case 'alb-multi-value': {
      const multi = shape === 'alb-multi-value';
      const allHeaders = headers.map(([name, value]) => [name.toLowerCase(), value]);
      if (cookies.length > 0) allHeaders.push(['cookie', cookies.join('; ')]);
      event.httpMethod = method;
      event.path = path;
      // ALB passes query values as the client sent them, without decoding them.
      if (multi) {
        for (const [name, value] of allHeaders) {
          event.multiValueHeaders[name] = [...(event.multiValueHeaders[name] ?? []), value];
        }
        event.multiValueQueryStringParameters = raw;
      } else {
        for (const [name, value] of allHeaders) event.headers[name] = value;
        event.queryStringParameters = lastValues(raw);
      }
      event.body = body ?? '';
      event.isBase64Encoded = Boolean(request.base64);
      return event;
    }
    default:
      throw new Error(`unknown event shape ${shape}`);
  }
}

/**
 * Reads a function's response the way `shape`'s integration does, into
 * `{ status, headers: {lowercase name: [values]}, cookies: [Set-Cookie values], body: Buffer }`.
 */
export function readResponse(shape, payload) {
  const headers = {};
  const add = (name, value) => (headers[name.toLowerCase()] ??= []).push(String(value));
  let cookies = [];

  switch (shape) {
    case 'apigw-rest-v1':
    case 'alb-multi-value':
      // REST APIs merge `headers` into `multiValueHeaders`; ALB with multi-value headers on
      // reads only `multiValueHeaders`.
      for (const [name, values] of Object.entries(payload.multiValueHeaders ?? {})) {
        for (const value of values) add(name, value);
      }
      if (shape === 'apigw-rest-v1') {
        for (const [name, value] of Object.entries(payload.headers ?? {})) add(name, value);
      }
      cookies = headers['set-cookie'] ?? [];
      break;
    case 'apigw-http-v2':
    case 'function-url':
      for (const [name, value] of Object.entries(payload.headers ?? {})) add(name, value);
      cookies = [...(payload.cookies ?? []), ...(headers['set-cookie'] ?? [])];
      break;
    case 'alb':
      // Without multi-value headers, ALB reads only `headers`: one value per name.
      for (const [name, value] of Object.entries(payload.headers ?? {})) add(name, value);
      cookies = headers['set-cookie'] ?? [];
      break;
    default:
      throw new Error(`unknown event shape ${shape}`);
  }

  const text = payload.body ?? '';
  const body = payload.isBase64Encoded ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');
  return { status: payload.statusCode, headers, cookies, body, payload };
}

/** Invokes `fn` with a request in `shape` and reads the response; fails on a runtime error. */
export async function request(fn, shape, spec) {
  const result = await fn.invoke(buildEvent(shape, spec));
  if (result.kind !== 'response') {
    throw new Error(`${fn.name} reported an invocation error: ${result.body.toString('utf8')}`);
  }
  return readResponse(shape, result.json());
}

/** Parses a JSON response body, with the body in the error when it is not JSON. */
export function jsonBody(response) {
  const text = response.body.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`expected a JSON body, got status ${response.status}: ${text.slice(0, 300)}`);
  }
}
