/**
 * Coalesces writes: frames queued for a connection are written together, in
 * one socket write, at the next `setImmediate`, so a burst of pushes costs one
 * write (one syscall) per connection instead of one per frame.
 *
 * Writing every queued connection is a round. A round writes for at most
 * `sliceMs`, then yields to the event loop and goes on at the next
 * `setImmediate`: pushes that arrive meanwhile are accepted at once and join
 * the frames of the connections not yet written, instead of waiting for the
 * whole round (2,000 writes take about 15 ms here). Connections queued again
 * after their turn wait for the next round, so each gets its frames in order
 * and every queued connection is written once per round.
 */
export interface Flushable {
  /** True while the connection is waiting in the outbox. */
  queued: boolean;
  flush(): void;
}

/** Measured with `npm run bench` (docs/BENCHMARKS.md): 4 ms gave the lowest fan-out p99 on 2 cores. */
export const DEFAULT_SLICE_MS = 4;
/** How many connections are written between two looks at the clock. */
const CLOCK_EVERY = 16;

export class Outbox {
  /** The round being written, from `next` on. */
  private round: Flushable[] = [];
  private next = 0;
  /** Connections queued after their turn in the current round: the next round. */
  private dirty: Flushable[] = [];
  private scheduled = false;
  /** The frames most recently joined for a write, and the joined bytes: members of one room share them. */
  private joinedFrom: Buffer[] = [];
  private joinedBytes: Buffer | undefined;
  private readonly run = (): void => this.writeSlice();

  constructor(private readonly sliceMs = DEFAULT_SLICE_MS) {}

  schedule(item: Flushable): void {
    if (item.queued) return;
    item.queued = true;
    this.dirty.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  /**
   * The first `count` frames as one buffer. Connections written one after
   * another usually queued the very same frames (the members of a room), so
   * the last joined buffer is reused when the frames match: no allocation per
   * recipient.
   */
  join(frames: readonly Buffer[], count: number, totalBytes: number): Buffer {
    const last = this.joinedFrom;
    let same = this.joinedBytes !== undefined && last.length === count;
    for (let i = 0; same && i < count; i++) same = last[i] === frames[i];
    if (same) return this.joinedBytes!;
    last.length = count;
    const joined = Buffer.allocUnsafe(totalBytes);
    let offset = 0;
    for (let i = 0; i < count; i++) {
      last[i] = frames[i];
      joined.set(frames[i], offset);
      offset += frames[i].length;
    }
    this.joinedBytes = joined;
    return joined;
  }

  private writeSlice(): void {
    this.scheduled = false;
    this.writeUpTo(performance.now() + this.sliceMs);
    if (this.next < this.round.length || this.dirty.length > 0) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  /** Writes connections of the round until it ends or the clock passes `until` (ms, performance.now()). */
  private writeUpTo(until: number): void {
    if (this.next >= this.round.length) this.startRound();
    const round = this.round;
    let i = this.next;
    while (i < round.length) {
      const item = round[i++];
      item.queued = false;
      item.flush();
      if (i % CLOCK_EVERY === 0 && performance.now() >= until) break;
    }
    this.next = i;
    if (this.next >= round.length) {
      // Let go of the round's connections and the last joined frames: the outbox may stay idle long after.
      round.length = 0;
      this.next = 0;
      this.joinedFrom.length = 0;
      this.joinedBytes = undefined;
    }
  }

  /** The current round is written (and emptied): the connections queued since are the next. */
  private startRound(): void {
    const done = this.round;
    this.round = this.dirty;
    this.dirty = done;
    this.next = 0;
  }
}
