/**
 * New connections whose live frames are held until their first frame (a
 * resume, or anything else but auth and refresh, which a resume may follow).
 * A client that sends nothing else gets them once a grace period has passed
 * since its welcome, released by one timer for the whole node.
 */
import type { Connection } from './connection.js';

export const NEWCOMER_GRACE_MS = 1000;
/** A newcomer holds at most this much; past it, its frames go out and a resume can no longer replay `*` in order. */
export const NEWCOMER_HOLD_BYTES = 64 * 1024;
const CHECK_EVERY_MS = 100;

export class Newcomers {
  /** In the order of their welcomes, so the due ones are at the front. */
  private queue: { conn: Connection; welcomedAt: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly graceMs = NEWCOMER_GRACE_MS) {}

  /** The connection was just welcomed. */
  add(conn: Connection): void {
    this.queue.push({ conn, welcomedAt: Date.now() });
    this.timer ??= setInterval(() => this.releaseDue(), CHECK_EVERY_MS);
  }

  clear(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.queue = [];
  }

  private releaseDue(): void {
    const due = Date.now() - this.graceMs;
    let i = 0;
    for (; i < this.queue.length && this.queue[i].welcomedAt <= due; i++) {
      const { conn } = this.queue[i];
      if (!conn.firstFrameSeen) conn.releaseHeld();
    }
    if (i > 0) this.queue = this.queue.slice(i);
    if (this.queue.length === 0) this.clear();
  }
}
