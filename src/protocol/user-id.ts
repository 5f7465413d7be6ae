/**
 * User ids: a client token's `sub`, the `uid` of the logic API. Well-formed
 * Unicode only: Redis keeps them as UTF-8, where every lone UTF-16 surrogate
 * becomes U+FFFD, so "\ud800" and "\udc00" would be one user there (one
 * pub/sub channel, one owner of a session) and two on the memory broker.
 */
import { loneSurrogateAt } from './unicode.js';

export const USER_ID_RULE = 'a string of 1-128 characters of well-formed Unicode (no lone UTF-16 surrogate)';

export function isUserId(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= 128 && loneSurrogateAt(value) === -1;
}
