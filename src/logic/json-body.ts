/**
 * Parses an application/json body with secure-json-parse (fastify's own JSON
 * parser): a key that could reach Object.prototype if some code merged the
 * body into another object (`__proto__`, or `constructor` holding
 * `prototype`) is refused. Unlike fastify's answer ("not valid JSON"), the
 * refusal says why: such a body is valid JSON.
 */
import { parse as secureJsonParse } from 'secure-json-parse';
import { apiErrors } from './errors.js';

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw apiErrors.badRequest('body is empty but content-type is application/json');
  try {
    return secureJsonParse(text) as unknown;
  } catch {
    throw apiErrors.badRequest(isJson(text) ? 'body must not have a key "__proto__", nor a "constructor" holding "prototype"' : 'body is not valid JSON');
  }
}
