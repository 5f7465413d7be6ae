/**
 * Resume tokens: `<wsId>.<expiry>.<signature>`, the signature an HMAC-SHA256
 * of the rest under a secret every node shares. A token names one session and
 * cannot be made or changed without the secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const RESUME_TOKEN_TTL_MS = 24 * 60 * 60_000;
const SIGNATURE_BYTES = 16;

export class ResumeTokens {
  constructor(
    private readonly secret: string,
    private readonly ttlMs = RESUME_TOKEN_TTL_MS,
  ) {}

  issue(wsId: string, now = Date.now()): string {
    return this.sign(wsId, now + this.ttlMs);
  }

  /** A token for `wsId` expiring at `expiresAt` (ms since the epoch). */
  sign(wsId: string, expiresAt: number): string {
    const payload = `${wsId}.${Math.floor(expiresAt / 1000).toString(36)}`;
    return `${payload}.${this.signature(payload).toString('base64url')}`;
  }

  /** The wsId a valid, unexpired token names; undefined for anything else. */
  verify(token: string, now = Date.now()): string | undefined {
    const lastDot = token.lastIndexOf('.');
    const expiryDot = token.lastIndexOf('.', lastDot - 1);
    if (expiryDot <= 0 || token.length > 512) return undefined;
    const payload = token.slice(0, lastDot);
    const given = Buffer.from(token.slice(lastDot + 1), 'base64url');
    if (given.length !== SIGNATURE_BYTES || !timingSafeEqual(given, this.signature(payload))) return undefined;
    const expiresAt = parseInt(token.slice(expiryDot + 1, lastDot), 36) * 1000;
    if (!(expiresAt > now)) return undefined;
    return token.slice(0, expiryDot);
  }

  private signature(payload: string): Buffer {
    return createHmac('sha256', this.secret).update(payload).digest().subarray(0, SIGNATURE_BYTES);
  }
}
