/**
 * The malformed-frame limit (PROTOCOL.md §2): more than 10 bad frames within
 * any 10 s closes the connection with 4004. A sliding window, not a fixed one
 * that resets: a burst straddling a reset would otherwise pass at twice the limit.
 */

export const MALFORMED_FRAME_LIMIT = 10;
export const MALFORMED_FRAME_WINDOW_MS = 10_000;

/** The times of a connection's last MALFORMED_FRAME_LIMIT bad frames, in a ring; made on its first bad frame. */
export class MalformedFrames {
  private readonly times = new Float64Array(MALFORMED_FRAME_LIMIT);
  private count = 0;

  /** Records a bad frame at `now`; true when it is one more than the limit within the window. */
  record(now: number): boolean {
    const slot = this.count % MALFORMED_FRAME_LIMIT;
    // once the ring is full, the slot holds the bad frame MALFORMED_FRAME_LIMIT frames before this one
    const over = this.count >= MALFORMED_FRAME_LIMIT && now - this.times[slot] <= MALFORMED_FRAME_WINDOW_MS;
    this.times[slot] = now;
    this.count++;
    return over;
  }
}
