/**
 * The memory engine's idempotency keys of pushes: each with the answer of the
 * push made under it (or that it is under way, or ended with its outcome
 * unknown), until its window ends. Bounded: expired keys are swept, and past `maxBytes` the oldest keys
 * go first (counted in `evictions`; a push repeated after its key went is made
 * again).
 */
import type { PushClaim, PushOnce, PushOutcome } from './broker.js';

interface KeptPush {
  expiresAt: number;
  /** The push's answer; '' while it is under way or when its outcome is unknown. */
  answer: string;
  /** While the push is under way: until when it may be, at most; undefined once settled. */
  underWayUntil: number | undefined;
  /** The claim's id, which its settle gives. */
  claimId: string;
}

/** What one kept key costs beyond its strings (a Map entry and its object), as counted against the bound. */
const ENTRY_OVERHEAD_BYTES = 96;

/** The bound by default: at ~200 bytes a key, over 300,000 keys (1,000 keyed pushes a second over a 5-minute window). */
export const DEFAULT_PUSH_KEYS_MAX_BYTES = 64 * 1024 * 1024;

function costOf(key: string, { answer, claimId }: KeptPush): number {
  // strings of ASCII (keys, claim ids) or JSON of ASCII-safe fields: a byte a character, as V8 holds one-byte strings
  return key.length + answer.length + claimId.length + ENTRY_OVERHEAD_BYTES;
}

export class PushKeys {
  /** In the order the keys were claimed: with one window for every key, the first to expire come first. */
  private readonly kept = new Map<string, KeptPush>();
  /** Bytes the kept keys count for (costOf). */
  bytes = 0;
  /** Keys dropped before their window ended, to stay within maxBytes. */
  evictions = 0;

  constructor(private readonly maxBytes = DEFAULT_PUSH_KEYS_MAX_BYTES) {}

  get size(): number {
    return this.kept.size;
  }

  /**
   * The key's push as made before (its answer), under way (for at most `longestPushMs` after its claim,
   * then counted unknown), ended with its outcome unknown, or none: then it is claimed, under way, by the caller.
   */
  claim({ key, windowMs }: PushOnce, claimId: string, longestPushMs: number, now = Date.now()): PushClaim {
    const kept = this.kept.get(key);
    if (kept !== undefined && kept.expiresAt > now) {
      if (kept.answer !== '') return { status: 'done', answer: kept.answer };
      if (kept.underWayUntil !== undefined && kept.underWayUntil > now) return { status: 'under-way', leftMs: kept.underWayUntil - now };
      return { status: 'unknown' };
    }
    if (kept !== undefined) this.drop(key, kept);
    this.add(key, { expiresAt: now + windowMs, answer: '', underWayUntil: now + longestPushMs, claimId });
    return { status: 'claimed' };
  }

  /** How the claimed push ended (Broker.settlePush). */
  settle(key: string, claimId: string, outcome: PushOutcome): void {
    const kept = this.kept.get(key);
    // evicted meanwhile, settled, or claimed anew by another request once its window ended
    if (kept === undefined || kept.claimId !== claimId || kept.underWayUntil === undefined) return;
    kept.underWayUntil = undefined; // 'unknown' leaves it so
    if (outcome.status === 'not-made') this.drop(key, kept);
    if (outcome.status !== 'made') return;
    this.bytes += outcome.answer.length;
    kept.answer = outcome.answer;
    this.evictPast(this.maxBytes);
  }

  /** Forgets the keys whose window ended. */
  sweep(now = Date.now()): void {
    for (const [key, kept] of this.kept) {
      // claimed in order with one window each: the rest expire later (a shorter window given later is swept on its claim)
      if (kept.expiresAt > now) break;
      this.drop(key, kept);
    }
  }

  clear(): void {
    this.kept.clear();
    this.bytes = 0;
  }

  private add(key: string, kept: KeptPush): void {
    this.evictPast(this.maxBytes - costOf(key, kept));
    this.kept.set(key, kept);
    this.bytes += costOf(key, kept);
  }

  /** Drops the oldest keys until the kept ones count for at most `bytes`. */
  private evictPast(bytes: number): void {
    for (const [key, kept] of this.kept) {
      if (this.bytes <= bytes) return;
      this.drop(key, kept);
      this.evictions++;
    }
  }

  private drop(key: string, kept: KeptPush): void {
    this.kept.delete(key);
    this.bytes -= costOf(key, kept);
  }
}
