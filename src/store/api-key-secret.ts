import { createHash, randomBytes } from 'node:crypto';

/*
 * API keys are 192 random bits, so a plain SHA-256 is the right hash: there is nothing to
 * brute-force, and a lookup by hash needs a deterministic one (no salt, no slow KDF).
 */

const KEY_TAG = 'fg_';
/** Characters of the key kept in clear as its prefix: the tag and 8 random characters. */
export const API_KEY_PREFIX_LENGTH = KEY_TAG.length + 8;

/** The stored form of a key: SHA-256, hex. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new key (shown to its owner once), its public prefix and the hash to store. */
export function generateApiKey(): { key: string; prefix: string; keyHash: string } {
  const key = KEY_TAG + randomBytes(24).toString('base64url');
  return { key, prefix: key.slice(0, API_KEY_PREFIX_LENGTH), keyHash: hashApiKey(key) };
}
