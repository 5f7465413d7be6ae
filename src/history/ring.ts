/**
 * One stream's recent publications, in memory: at most `size` entries, none
 * older than `ttlMs`. Appends are O(1) amortized; old entries are dropped from
 * the front, and the array is compacted as they go, so a stream that went quiet
 * holds nothing once its entries have expired.
 */
import type { HistoryEntry } from '../broker/broker.js';
import { entryBytes, type BudgetedHistory, type HistoryBudget } from './budget.js';

export interface HistoryLimits {
  /** Entries kept per stream; 0 keeps none. */
  size: number;
  /** Age after which an entry is dropped; 0 keeps none. */
  ttlMs: number;
}

interface Entry {
  pub: HistoryEntry;
  at: number;
  /** What the node's budget counts for it (0 without one). */
  bytes: number;
}

export const DEFAULT_HISTORY: HistoryLimits = { size: 1000, ttlMs: 5 * 60_000 };

export function historyEnabled(limits: HistoryLimits): boolean {
  return limits.size > 0 && limits.ttlMs > 0;
}

/**
 * Entries hold contiguous seqs (a stream's publications, each appended once), so a seq is found by its offset from the first.
 * With a budget, every entry kept is counted in it, and the budget may drop this stream's oldest to stay within its bound.
 */
export class StreamHistory implements BudgetedHistory {
  /** Slots before `start` are emptied as their entries are dropped (so a dropped entry is let go of at once) and wait for the next compaction. */
  private entries: (Entry | undefined)[] = [];
  private start = 0;

  constructor(
    private readonly limits: HistoryLimits,
    private readonly budget?: HistoryBudget,
  ) {}

  get length(): number {
    return this.entries.length - this.start;
  }

  append(pub: HistoryEntry, now: number): void {
    if (!historyEnabled(this.limits)) return;
    const bytes = this.budget === undefined ? 0 : entryBytes(pub.stream, pub.val);
    this.entries.push({ pub, at: now, bytes });
    if (this.length > this.limits.size) this.dropUntil(this.entries.length - this.limits.size);
    this.dropExpired(now);
    this.budget?.added(this, pub.seq, bytes, now);
  }

  holds(seq: number): boolean {
    return this.length > 0 && seq >= this.kept(this.start).pub.seq && seq <= this.kept(this.entries.length - 1).pub.seq;
  }

  evictThrough(seq: number, now: number): number {
    this.dropExpired(now);
    if (!this.holds(seq)) return 0;
    const evicted = seq - this.kept(this.start).pub.seq + 1;
    this.dropUntil(this.start + evicted);
    this.compact();
    return evicted;
  }

  /** Publications with seq > `after`, oldest first, at most `limit`. */
  after(after: number, limit: number, now: number): HistoryEntry[] {
    this.dropExpired(now);
    if (this.length === 0) return [];
    const from = this.start + Math.min(Math.max(after + 1 - this.kept(this.start).pub.seq, 0), this.length);
    const to = Math.min(from + Math.max(limit, 0), this.entries.length);
    const page: HistoryEntry[] = [];
    for (let i = from; i < to; i++) page.push(this.kept(i).pub);
    return page;
  }

  /** True when nothing is kept any more (so the stream may be forgotten). */
  isEmpty(now: number): boolean {
    this.dropExpired(now);
    return this.length === 0;
  }

  /** The entry at index `i`, one of those kept (at `start` or after). */
  private kept(i: number): Entry {
    return this.entries[i]!;
  }

  private dropExpired(now: number): void {
    const oldest = now - this.limits.ttlMs;
    let end = this.start;
    while (end < this.entries.length && this.kept(end).at < oldest) end++;
    this.dropUntil(end);
    this.compact();
  }

  /** Drops the entries before index `end`: lets go of them and releases their bytes from the budget. */
  private dropUntil(end: number): void {
    for (let i = this.start; i < end; i++) {
      this.budget?.released(this.kept(i).bytes);
      this.entries[i] = undefined;
    }
    this.start = end;
  }

  /** Lets go of the emptied slots once they are as many as those kept (so each entry is copied O(1) times). */
  private compact(): void {
    if (this.start === 0) return;
    if (this.start === this.entries.length) this.entries = [];
    else if (this.start >= this.length) this.entries = this.entries.slice(this.start);
    else return;
    this.start = 0;
  }
}
