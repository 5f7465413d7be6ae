/**
 * One stream's recent publications, in memory: at most `size` entries, none
 * older than `ttlMs`. Appends are O(1); old entries are dropped from the front.
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

export class StreamHistory {
  private entries: Entry[] = [];
  private start = 0;

  constructor(private readonly limits: HistoryLimits) {}

  get length(): number {
    return this.entries.length - this.start;
  }

  append(pub: HistoryEntry, now: number): void {
    if (!historyEnabled(this.limits)) return;
    this.entries.push({ pub, at: now });
    this.dropExpired(now);
    if (this.length > this.limits.size) this.start = this.entries.length - this.limits.size;
    // compact once the dropped prefix is as long as what is kept
    if (this.start > this.limits.size) {
      this.entries = this.entries.slice(this.start);
      this.start = 0;
    }
  }

  /** Publications with seq > `after`, oldest first, at most `limit`. */
  after(after: number, limit: number, now: number): HistoryEntry[] {
    this.dropExpired(now);
    const out: HistoryEntry[] = [];
    for (let i = this.start; i < this.entries.length && out.length < limit; i++) {
      const { pub } = this.entries[i];
      if (pub.seq > after) out.push(pub);
    }
    return out;
  }

  /** True when nothing is kept any more (so the stream may be forgotten). */
  isEmpty(now: number): boolean {
    this.dropExpired(now);
    return this.length === 0;
  }

  private dropExpired(now: number): void {
    const oldest = now - this.limits.ttlMs;
    while (this.start < this.entries.length && this.entries[this.start].at < oldest) this.start++;
  }
}
