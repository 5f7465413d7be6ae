/**
 * One stream's recent publications, in memory: at most `size` entries, none
 * older than `ttlMs`. Appends are O(1) amortized; old entries are dropped from
 * the front, and the array is compacted as they go, so a stream that went quiet
 * holds nothing once its entries have expired.
 */
import type { HistoryEntry } from '../broker/broker.js';

export interface HistoryLimits {
  /** Entries kept per stream; 0 keeps none. */
  size: number;
  /** Age after which an entry is dropped; 0 keeps none. */
  ttlMs: number;
}

interface Entry {
  pub: HistoryEntry;
  at: number;
}

export const DEFAULT_HISTORY: HistoryLimits = { size: 1000, ttlMs: 5 * 60_000 };

export function historyEnabled(limits: HistoryLimits): boolean {
  return limits.size > 0 && limits.ttlMs > 0;
}

/** Entries hold contiguous seqs (a stream's publications, each appended once), so a seq is found by its offset from the first. */
export class StreamHistory {
  private entries: Entry[] = [];
  /** Index of the first entry kept: those before it were dropped and wait for the next compaction. */
  private start = 0;

  constructor(private readonly limits: HistoryLimits) {}

  get length(): number {
    return this.entries.length - this.start;
  }

  append(pub: HistoryEntry, now: number): void {
    if (!historyEnabled(this.limits)) return;
    this.entries.push({ pub, at: now });
    if (this.length > this.limits.size) this.start = this.entries.length - this.limits.size;
    this.dropExpired(now);
  }

  /** Publications with seq > `after`, oldest first, at most `limit`. */
  after(after: number, limit: number, now: number): HistoryEntry[] {
    this.dropExpired(now);
    if (this.length === 0) return [];
    const skip = Math.min(Math.max(after + 1 - this.entries[this.start].pub.seq, 0), this.length);
    const from = this.start + skip;
    return this.entries.slice(from, from + Math.max(limit, 0)).map((entry) => entry.pub);
  }

  /** True when nothing is kept any more (so the stream may be forgotten). */
  isEmpty(now: number): boolean {
    this.dropExpired(now);
    return this.length === 0;
  }

  private dropExpired(now: number): void {
    const oldest = now - this.limits.ttlMs;
    while (this.start < this.entries.length && this.entries[this.start].at < oldest) this.start++;
    this.compact();
  }

  /** Lets go of dropped entries once they are as many as those kept (so each entry is copied O(1) times). */
  private compact(): void {
    if (this.start === 0) return;
    if (this.start === this.entries.length) this.entries = [];
    else if (this.start >= this.length) this.entries = this.entries.slice(this.start);
    else return;
    this.start = 0;
  }
}
