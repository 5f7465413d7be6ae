/**
 * A token bucket kept in two fields of its owner (a connection, an address),
 * so a rate limit costs no object per owner: `perSecond` tokens a second, up
 * to `capacity`.
 */
export interface RateBucket {
  rateTokens: number;
  /** When `rateTokens` was last brought up to date (ms). */
  rateRefilledAt: number;
}

/** The tokens the bucket holds at `now`. */
export function tokensAt(bucket: RateBucket, now: number, perSecond: number, capacity: number): number {
  return Math.min(capacity, bucket.rateTokens + ((now - bucket.rateRefilledAt) / 1000) * perSecond);
}

/** Takes one token; false when less than one is left. */
export function takeToken(bucket: RateBucket, now: number, perSecond: number, capacity: number): boolean {
  bucket.rateTokens = tokensAt(bucket, now, perSecond, capacity);
  bucket.rateRefilledAt = now;
  if (bucket.rateTokens < 1) return false;
  bucket.rateTokens -= 1;
  return true;
}
