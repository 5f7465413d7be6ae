/**
 * Parses an application/json body. Like fastify's own parser it refuses a key
 * that could reach Object.prototype if some code merged the body into another
 * object (`__proto__`, or `constructor` holding `prototype`), but it says so:
 * fastify's answers "not valid JSON" for such a body, which is valid JSON.
 */
import { apiErrors } from './errors.js';

function isForbidden(key: string, value: unknown): boolean {
  return key === '__proto__' || (key === 'constructor' && typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype'));
}

/** Walks the parsed body with a stack of its own: JSON nested 100,000 deep is valid, and a recursive walk (or a reviver) overflows. */
function hasForbiddenKey(body: unknown): boolean {
  const pending = [body];
  while (pending.length > 0) {
    const node = pending.pop();
    if (typeof node !== 'object' || node === null) continue;
    for (const [key, value] of Object.entries(node)) {
      if (isForbidden(key, value)) return true;
      pending.push(value);
    }
  }
  return false;
}

export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw apiErrors.badRequest('body is empty but content-type is application/json');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw apiErrors.badRequest('body is not valid JSON');
  }
  if (hasForbiddenKey(body)) throw apiErrors.badRequest('body must not have a key "__proto__", nor a "constructor" holding "prototype"');
  return body;
}
