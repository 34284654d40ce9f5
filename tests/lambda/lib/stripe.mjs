// Stripe webhook signatures as Stripe computes them, and calls to the Stripe emulator's control API.

import { createHmac } from 'node:crypto';

/**
 * Returns a `Stripe-Signature` header value for `payload` (a Buffer or string): `t=<seconds>,
 * v1=<hex HMAC-SHA256 of "<t>.<payload>" under secret>`.
 */
export function stripeSignature(secret, payload, timestamp = Math.floor(Date.now() / 1000)) {
  const signed = Buffer.concat([Buffer.from(`${timestamp}.`, 'utf8'), Buffer.from(payload)]);
  const digest = createHmac('sha256', secret).update(signed).digest('hex');
  return `t=${timestamp},v1=${digest}`;
}

/** Calls the emulator's control API and returns the parsed JSON answer; fails on a non-2xx. */
export async function emulatorControl(emulatorUrl, method, path, body) {
  const response = await fetch(new URL(path, emulatorUrl), {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} on the Stripe emulator returned ${response.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}
