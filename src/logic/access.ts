/** Who may call the logic API: the API key when one is set, loopback callers otherwise. */
import { createHash, timingSafeEqual } from 'node:crypto';

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return v4.startsWith('127.') || address === '::1';
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** `Bearer <credentials>`; the scheme is case-insensitive (RFC 7235 §2.1). */
const BEARER = /^bearer +(.*)$/i;

/**
 * What is wrong with a request's Authorization header, or undefined when it
 * carries the key. Compares in constant time: both sides are hashed to equal length first.
 */
export function apiKeyChecker(apiKey: string): (authorization: string | undefined) => string | undefined {
  const expected = digest(apiKey);
  return (authorization) => {
    if (authorization === undefined) return 'the request has no Authorization header';
    const credentials = BEARER.exec(authorization)?.[1];
    if (credentials === undefined) return 'the Authorization header is not of the form "Bearer <key>"';
    return timingSafeEqual(digest(credentials.trim()), expected) ? undefined : 'the key is not the one roomcast runs with (--api-key)';
  };
}
