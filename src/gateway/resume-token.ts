/**
 * Resume tokens: `<wsId>.<expiry>.<signature>`, the signature an HMAC-SHA256
 * of the rest under a secret every node shares. A token names one session and
 * cannot be made or changed without the secret. When the shared secret changes
 * (Redis lost it), tokens signed with the ones before stay valid here.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const RESUME_TOKEN_TTL_MS = 24 * 60 * 60_000;
const SIGNATURE_BYTES = 16;
/** Secrets kept to check tokens with: the current one and those it replaced. */
const SECRETS_KEPT = 4;

export class ResumeTokens {
  /** The one tokens are signed with first. */
  private secrets: string[];

  constructor(
    secret: string,
    private readonly ttlMs = RESUME_TOKEN_TTL_MS,
  ) {
    this.secrets = [secret];
  }

  /** Signs with `secret` from now on; tokens signed with the secrets before it are still accepted. */
  adopt(secret: string): void {
    this.secrets = [secret, ...this.secrets.filter((s) => s !== secret)].slice(0, SECRETS_KEPT);
  }

  issue(wsId: string, now = Date.now()): string {
    return this.sign(wsId, now + this.ttlMs);
  }

  /** A token for `wsId` expiring at `expiresAt` (ms since the epoch). */
  sign(wsId: string, expiresAt: number): string {
    const payload = `${wsId}.${Math.floor(expiresAt / 1000).toString(36)}`;
    return `${payload}.${this.signature(this.secrets[0], payload).toString('base64url')}`;
  }

  /** The wsId a valid, unexpired token names; undefined for anything else. */
  verify(token: string, now = Date.now()): string | undefined {
    const lastDot = token.lastIndexOf('.');
    const expiryDot = token.lastIndexOf('.', lastDot - 1);
    if (expiryDot <= 0 || token.length > 512) return undefined;
    const payload = token.slice(0, lastDot);
    const given = Buffer.from(token.slice(lastDot + 1), 'base64url');
    if (given.length !== SIGNATURE_BYTES || !this.secrets.some((secret) => timingSafeEqual(given, this.signature(secret, payload)))) return undefined;
    const expiresAt = parseInt(token.slice(expiryDot + 1, lastDot), 36) * 1000;
    if (!(expiresAt > now)) return undefined;
    return token.slice(0, expiryDot);
  }

  private signature(secret: string, payload: string): Buffer {
    return createHmac('sha256', secret).update(payload).digest().subarray(0, SIGNATURE_BYTES);
  }
}
