/**
 * Reconnect delays: exponential backoff with full jitter. The n-th retry
 * (from 0) waits a uniformly random time in [0, min(maxDelayMs, initialDelayMs * factor^n)),
 * so clients dropped together by a server restart do not come back together.
 */
export interface BackoffOptions {
  /** Upper bound of the first retry's delay. */
  initialDelayMs: number;
  /** Cap of the upper bound, however many retries failed. */
  maxDelayMs: number;
  /** How much the upper bound grows per failed retry. */
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 30_000, factor: 2 };

/** The largest delay the `attempt`-th retry (from 0) can wait. */
export function backoffCeiling(attempt: number, options: BackoffOptions): number {
  // Past ~1000 attempts factor^attempt is Infinity; min() still gives the cap (and 0 * Infinity, NaN, is 0)
  return Math.min(options.maxDelayMs, options.initialDelayMs * options.factor ** attempt) || 0;
}

/** A delay for the `attempt`-th retry; `random` returns a number in [0, 1) like Math.random. */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(attempt, options));
}

/** Checks user-supplied options, naming the one that is wrong. */
export function checkBackoff(options: BackoffOptions): BackoffOptions {
  const { initialDelayMs, maxDelayMs, factor } = options;
  if (!Number.isFinite(initialDelayMs) || initialDelayMs < 0) throw new TypeError(`reconnect.initialDelayMs must be a number >= 0, got ${initialDelayMs}`);
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < initialDelayMs) {
    throw new TypeError(`reconnect.maxDelayMs must be a number >= reconnect.initialDelayMs (${initialDelayMs}), got ${maxDelayMs}`);
  }
  if (!Number.isFinite(factor) || factor < 1) throw new TypeError(`reconnect.factor must be a number >= 1, got ${factor}`);
  return options;
}
