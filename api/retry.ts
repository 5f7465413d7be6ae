/** When a failed call of the logic API is made again, and how long the client waits first. */

/**
 * - `push`: a push, sent with an idempotency key, so a retry is never delivered
 *   twice: retried when no answer came (network, timeout), on 503 and on 429,
 *   and on a 409 with Retry-After (its first attempt is still under way).
 * - `safe`: a call that changes nothing twice (a read, a join, a leave): the same.
 * - `never`: never retried (a kick: a retry of a kick that was made is a 404).
 */
export type RetryKind = 'push' | 'safe' | 'never';

/** What went wrong with one attempt: an HTTP status, or 0 when no answer came. */
export interface AttemptFailure {
  status: number;
}

export function retryable(kind: RetryKind, failure: AttemptFailure): boolean {
  if (kind === 'never') return false;
  return failure.status === 0 || failure.status === 503 || failure.status === 429;
}

/** A failure after which a push may or may not have been made. */
export function outcomeUnknown(failure: AttemptFailure): boolean {
  return failure.status === 0 || failure.status === 503;
}

export interface Backoff {
  /** The ceiling of the wait before the first retry, doubled for each retry after it. */
  baseMs: number;
  /** The most the ceiling grows to. */
  maxMs: number;
}

/** The wait before retry `retry` (1 for the first): half its ceiling, plus up to half again at random (jitter). */
export function backoffDelay(retry: number, { baseMs, maxMs }: Backoff, random: () => number = Math.random): number {
  // past ~1000 retries 2^n is Infinity: min() still gives the cap, and 0 * Infinity (NaN) is 0
  const ceiling = Math.min(maxMs, baseMs * 2 ** (retry - 1)) || 0;
  return ceiling / 2 + (random() * ceiling) / 2;
}

/** The seconds a Retry-After header gives (delay-seconds only; an HTTP date is not taken), or undefined. */
export function retryAfterSeconds(header: string | null): number | undefined {
  if (header === null || !/^\d{1,9}$/.test(header.trim())) return undefined;
  return Number(header.trim());
}

/**
 * The wait before asking again about a push still under way: Retry-After, but no longer than the
 * backoff's cap (maxMs), so the retries left are spent within a bounded time.
 */
export function underWayDelay(retryAfterS: number, { maxMs }: Backoff): number {
  return Math.min(retryAfterS * 1000, maxMs);
}
