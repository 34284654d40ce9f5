// The sealed `wos-session` cookie format of the WorkOS Node SDK 12.x: iron "Fe26.2" with the
// SDK's `~2` suffix, password id `1` and an empty expiration.
//
//   Fe26.2*1*<encryption salt>*<iv>*<ciphertext>*<expiration>*<hmac salt>*<hmac digest>~2
//
// Keys are PBKDF2-HMAC-SHA1 (1 iteration, 32 bytes) over the password, salted with the hex text
// of 32 random bytes. The cipher is AES-256-CBC; the digest is HMAC-SHA256 over the first six
// fields; binary fields are base64url without padding.

import { createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'Fe26.2';

function key(password, salt) {
  return pbkdf2Sync(password, salt, 1, 32, 'sha1');
}

/** Seals `data` (a JSON-serialisable value) as the SDK does. */
export function seal(password, data) {
  const encryptionSalt = randomBytes(32).toString('hex');
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', key(password, encryptionSalt), iv);
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(data), 'utf8'), cipher.final()]);
  const macBase = `${PREFIX}*1*${encryptionSalt}*${iv.toString('base64url')}*${ciphertext.toString('base64url')}*`;
  const hmacSalt = randomBytes(32).toString('hex');
  const digest = createHmac('sha256', key(password, hmacSalt)).update(macBase).digest('base64url');
  return `${macBase}*${hmacSalt}*${digest}~2`;
}

/** Unseals a value sealed by `seal` or by the service; throws when it does not verify. */
export function unseal(password, sealed) {
  const [body] = sealed.split('~');
  const parts = body.split('*');
  if (parts.length !== 8 || parts[0] !== PREFIX) throw new Error('not an iron Fe26.2 value');
  const [, , encryptionSalt, iv, ciphertext, , hmacSalt, digest] = parts;
  const macBase = parts.slice(0, 6).join('*');
  const expected = createHmac('sha256', key(password, hmacSalt)).update(macBase).digest();
  const actual = Buffer.from(digest, 'base64url');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
    throw new Error('the sealed value does not verify under this password');
  }
  const decipher = createDecipheriv('aes-256-cbc', key(password, encryptionSalt), Buffer.from(iv, 'base64url'));
  const plaintext = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
  return JSON.parse(plaintext.toString('utf8'));
}
