/** Client tokens for the tests, signed with jose as a real backend would. */
import { SignJWT, UnsecuredJWT } from 'jose';

export const JWT_SECRET = 'a-test-secret-of-at-least-32-bytes!!';

export interface TokenClaims {
  sub?: string;
  rooms?: unknown;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  /** The exp claim itself (seconds since the epoch), instead of expiresIn. */
  exp?: number;
}

export async function signToken(claims: TokenClaims, secret = JWT_SECRET): Promise<string> {
  const jwt = new SignJWT({ ...(claims.rooms === undefined ? {} : { rooms: claims.rooms }) }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (claims.sub !== undefined) jwt.setSubject(claims.sub);
  if (claims.expiresIn !== undefined) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + claims.expiresIn);
  if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** A token with `alg: none` and no signature. */
export function unsignedToken(sub: string): string {
  return new UnsecuredJWT({}).setSubject(sub).setIssuedAt().encode();
}
