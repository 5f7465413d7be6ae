/**
 * Resume tokens: `<wsId>.<expiry>.<signature>`, the signature an HMAC-SHA256
 * of the rest and of the user the session had when the token was issued, under
 * a secret every node shares. A token names one session and cannot be made or
 * changed without the secret, nor used by another user even once nothing
 * records whose the session was (it ended). When the shared secret changes
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

  /** A token for the session `wsId` of user `uid` (undefined: an anonymous one). */
  issue(wsId: string, uid: string | undefined, now = Date.now()): string {
    return this.sign(wsId, now + this.ttlMs, uid);
  }

  /** A token for `wsId` expiring at `expiresAt` (ms since the epoch). */
  sign(wsId: string, expiresAt: number, uid?: string): string {
    const payload = `${wsId}.${Math.floor(expiresAt / 1000).toString(36)}`;
    return `${payload}.${this.signature(this.secrets[0], payload, uid).toString('base64url')}`;
  }

  /**
   * The session a valid, unexpired token names, when it was issued to user `uid` or to an
   * anonymous connection (`issuedToUser` false: a session may have become a user's after
   * its welcome, with an auth frame); undefined for anything else, a token of another user too.
   */
  verify(token: string, uid?: string, now = Date.now()): ResumeClaim | undefined {
    const lastDot = token.lastIndexOf('.');
    const expiryDot = token.lastIndexOf('.', lastDot - 1);
    if (expiryDot <= 0 || token.length > 512) return undefined;
    const payload = token.slice(0, lastDot);
    const given = Buffer.from(token.slice(lastDot + 1), 'base64url');
    if (given.length !== SIGNATURE_BYTES) return undefined;
    const signedBy = (owner: string | undefined): boolean => this.secrets.some((secret) => timingSafeEqual(given, this.signature(secret, payload, owner)));
    const issuedToUser = uid !== undefined && signedBy(uid);
    if (!issuedToUser && !signedBy(undefined)) return undefined;
    const expiresAt = parseInt(token.slice(expiryDot + 1, lastDot), 36) * 1000;
    if (!(expiresAt > now)) return undefined;
    return { wsId: token.slice(0, expiryDot), issuedToUser };
  }

  /** An anonymous session's signature covers the payload alone (as every token's did before users were bound in). */
  private signature(secret: string, payload: string, uid: string | undefined): Buffer {
    const hmac = createHmac('sha256', secret).update(payload);
    // wsIds and expiries hold no NUL: the user starts after the first one
    if (uid !== undefined) hmac.update(`\0${uid}`);
    return hmac.digest().subarray(0, SIGNATURE_BYTES);
  }
}

export interface ResumeClaim {
  wsId: string;
  /** Issued to the user it was verified for; false: issued to an anonymous connection. */
  issuedToUser: boolean;
}
