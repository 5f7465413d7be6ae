/**
 * A node-wide bound on the bytes the memory engine's history holds, across
 * every stream (--history-max-memory). Each entry appended is queued, in
 * append order, as (its stream's history, its seq); when an append takes the
 * total past the bound, the globally oldest entries are dropped from the front
 * of that queue. Entries a stream dropped by its own limits (size, TTL) leave
 * stale records behind, skipped as they come up and swept out once they
 * outnumber the live ones, so each append costs O(1) amortized.
 */

/**
 * 256 MiB: a 1 KiB publication counts about 3.3 KiB, so this keeps some 80,000 of
 * them (5 minutes of ~270 pushes/s) while leaving most of Node's default heap
 * (2 GiB and more on 64-bit) to connections and their send buffers.
 */
export const DEFAULT_HISTORY_MAX_MEMORY = 256 * 1024 * 1024;

/** What the budget asks of a stream's history. */
export interface BudgetedHistory {
  /** Whether the entry of this seq is still kept. */
  holds(seq: number): boolean;
  /** Drops the stream's entries up to this seq (its oldest), releasing their bytes; how many were dropped for the budget (not expired anyway). */
  evictThrough(seq: number, now: number): number;
}

/**
 * The bytes counted for an entry besides its val and stream name, measured
 * on Node 20 x64: some 940 for the entry (its id, as randomUUID builds it, a
 * rope of ~480; the record that keeps its time; its slots in the arrays and in
 * the budget's queue) and 150 to 300 for the replay frame a resume caches for it
 * (the Buffer, its WeakMap slot, the WebSocket and JSON envelope, Node's pool).
 */
export const ENTRY_OVERHEAD_BYTES = 1280;

/** An entry's bytes: its val and stream name twice (the strings, and the frame a resume encodes of them) and the fixed overhead. */
export function entryBytes(stream: string, val: string): number {
  return entryBytesOf(Buffer.byteLength(val), stream.length);
}

/** The bytes of an entry whose val and stream name take these many bytes. */
export function entryBytesOf(valBytes: number, streamBytes: number): number {
  return ENTRY_OVERHEAD_BYTES + 2 * (valBytes + streamBytes);
}

/** Stale records are swept out of the queue only past this many, so a small queue is not rebuilt over and over. */
const MIN_SWEEP = 1024;

export class HistoryBudget {
  /** Bytes of the entries kept now. */
  bytes = 0;
  /** Entries dropped to stay within the bound. */
  evictions = 0;
  /** The queue, as two parallel arrays (no object per append); records before `head` are gone. */
  private histories: BudgetedHistory[] = [];
  private seqs: number[] = [];
  private head = 0;
  /** Records in the queue whose entry is still kept (the others are stale). */
  private held = 0;

  constructor(readonly maxBytes: number) {}

  /** An entry was appended: counts it, then drops the oldest entries of any stream while the total is past the bound. */
  added(history: BudgetedHistory, seq: number, bytes: number, now: number): void {
    this.histories.push(history);
    this.seqs.push(seq);
    this.held++;
    this.bytes += bytes;
    while (this.bytes > this.maxBytes && this.head < this.histories.length) {
      const oldest = this.histories[this.head];
      const oldestSeq = this.seqs[this.head];
      this.head++;
      if (oldest.holds(oldestSeq)) this.evictions += oldest.evictThrough(oldestSeq, now);
    }
    this.tidy();
  }

  /** An entry was dropped, by its stream's limits or by the budget. */
  released(bytes: number): void {
    this.bytes -= bytes;
    this.held--;
  }

  /** Lets go of the records already passed, and sweeps out stale ones once they outnumber those kept. */
  private tidy(): void {
    const queued = this.histories.length - this.head;
    if (queued - this.held > Math.max(this.held, MIN_SWEEP)) {
      const histories: BudgetedHistory[] = [];
      const seqs: number[] = [];
      for (let i = this.head; i < this.histories.length; i++) {
        if (!this.histories[i].holds(this.seqs[i])) continue;
        histories.push(this.histories[i]);
        seqs.push(this.seqs[i]);
      }
      this.histories = histories;
      this.seqs = seqs;
      this.head = 0;
    } else if (this.head > MIN_SWEEP && this.head >= queued) {
      this.histories = this.histories.slice(this.head);
      this.seqs = this.seqs.slice(this.head);
      this.head = 0;
    }
  }
}
