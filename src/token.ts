/**
 * `roomcast token`: signs a client token with the gateway's HMAC secret, for
 * trying `--auth` by hand (wscat, the admin's "try it" page) and for tests.
 * A backend signs its own tokens with any JWT library (docs/SECURITY.md); this
 * makes the same ones, and refuses what the gateway would refuse.
 */
import { SignJWT } from 'jose';
import { RoomGrant } from './gateway/auth.js';
import { isUserId, USER_ID_RULE } from './protocol/user-id.js';

export interface TokenRequest {
  /** The gateway's --jwt-secret. */
  secret: string;
  /** The user id: the token's `sub`. */
  sub: string;
  /** The `rooms` claim (room ids or prefix:* patterns); undefined leaves it out. */
  rooms: string[] | undefined;
  /** Seconds until `exp`; 0 leaves `exp` out (the token never expires). */
  ttlSeconds: number;
  audience: string | undefined;
  issuer: string | undefined;
}

/** The longest --ttl: a year. A token lives as long as its `exp`; a longer one is better made without it, on purpose. */
export const MAX_TOKEN_TTL_S = 365 * 24 * 3600;

/** Why the request cannot make a token the gateway accepts, or undefined. */
export function tokenRequestProblem(request: TokenRequest): string | undefined {
  if (!isUserId(request.sub)) return `--sub must be a user id, ${USER_ID_RULE}`;
  if (request.rooms !== undefined) {
    const grant = RoomGrant.parse(request.rooms);
    if (typeof grant === 'string') return `--rooms: ${grant}`;
  }
  return undefined;
}

/** An HS256 token for `request`, issued now; throws with the problem when the gateway would refuse it. */
export async function signClientToken(request: TokenRequest, now = Date.now()): Promise<string> {
  const problem = tokenRequestProblem(request);
  if (problem !== undefined) throw new Error(problem);
  const issuedAt = Math.floor(now / 1000);
  const jwt = new SignJWT(request.rooms === undefined ? {} : { rooms: request.rooms }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(request.sub).setIssuedAt(issuedAt);
  if (request.ttlSeconds > 0) jwt.setExpirationTime(issuedAt + request.ttlSeconds);
  if (request.audience !== undefined) jwt.setAudience(request.audience);
  if (request.issuer !== undefined) jwt.setIssuer(request.issuer);
  return jwt.sign(new TextEncoder().encode(request.secret));
}
