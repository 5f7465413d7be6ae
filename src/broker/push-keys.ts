/**
 * The memory engine's idempotency keys of pushes: each with the answer of the
 * push made under it ('' while that push is under way), until its window
 * ends. Bounded: expired keys are swept, and past `maxBytes` the oldest keys
 * go first (counted in `evictions`; a push repeated after its key went is made
 * again).
 */
import type { PushClaim, PushOnce } from './broker.js';

interface KeptPush {
  expiresAt: number;
  /** '' while the push is under way. */
  answer: string;
}

/** What one kept key costs beyond its strings (a Map entry and its object), as counted against the bound. */
const ENTRY_OVERHEAD_BYTES = 96;

/** The bound by default: at ~200 bytes a key, over 300,000 keys (1,000 keyed pushes a second over a 5-minute window). */
export const DEFAULT_PUSH_KEYS_MAX_BYTES = 64 * 1024 * 1024;

function costOf(key: string, answer: string): number {
  // strings of ASCII (keys) or JSON of ASCII-safe fields: a byte a character, as V8 holds one-byte strings
  return key.length + answer.length + ENTRY_OVERHEAD_BYTES;
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

  /** The key's push as made before (its answer), under way (''), or undefined: then it is claimed, under way, by the caller. */
  claim({ key, windowMs }: PushOnce, now = Date.now()): PushClaim {
    const kept = this.kept.get(key);
    if (kept !== undefined && kept.expiresAt > now) return kept.answer === '' ? { status: 'pending' } : { status: 'done', answer: kept.answer };
    if (kept !== undefined) this.drop(key, kept);
    this.add(key, { expiresAt: now + windowMs, answer: '' });
    return { status: 'claimed' };
  }

  /** The claimed push was made and answered `answer`; undefined: it was not made, and its key is free again. */
  settle(key: string, answer: string | undefined): void {
    const kept = this.kept.get(key);
    if (kept === undefined || kept.answer !== '') return; // evicted meanwhile, or not this caller's claim
    if (answer === undefined) {
      this.drop(key, kept);
      return;
    }
    this.bytes += answer.length;
    kept.answer = answer;
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
    this.evictPast(this.maxBytes - costOf(key, kept.answer));
    this.kept.set(key, kept);
    this.bytes += costOf(key, kept.answer);
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
    this.bytes -= costOf(key, kept.answer);
  }
}
